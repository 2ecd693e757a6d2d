"""Upload size limits enforced while the multipart body is read.

`LimitedUploadHandler` refuses at once when the declared Content-Length is
over the limit, and otherwise counts file bytes as they stream in, stopping
with 413 as soon as MAX_UPLOAD_BYTES is passed. Files spool to a temporary
file, never to memory as a whole.
"""

from django.conf import settings
from django.core.files.uploadhandler import TemporaryFileUploadHandler

from config.errors import PayloadTooLarge

# Room for the multipart boundaries and the small form fields next to the file.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The upload exceeds the limit of {limit} bytes.", "upload_too_large")


class LimitedUploadHandler(TemporaryFileUploadHandler):
    def __init__(self, request=None, limit: int | None = None):
        super().__init__(request)
        self.limit = limit if limit is not None else settings.MAX_UPLOAD_BYTES
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.limit + MULTIPART_OVERHEAD_BYTES:
            raise _too_large(self.limit)
        return super().handle_raw_input(input_data, META, content_length, boundary, encoding)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            if self.file is not None:
                self.file.close()
            raise _too_large(self.limit)
        return super().receive_data_chunk(raw_data, start)

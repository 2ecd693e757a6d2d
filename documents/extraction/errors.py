"""What extraction refuses with, as stable codes (the API's error shape, and the sandbox's)."""

from rest_framework import status

from config.errors import PrecisError


class UnsupportedFileType(PrecisError):
    status_code = status.HTTP_415_UNSUPPORTED_MEDIA_TYPE
    default_code = "unsupported_file_type"


class ExtractionFailed(PrecisError):
    """The file is of a supported type but its content cannot be used (400)."""

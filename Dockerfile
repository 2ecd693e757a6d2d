# syntax=docker/dockerfile:1
# Precis image: one image, three roles (web / worker / beat), chosen by the command.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /build
COPY requirements/ requirements/
RUN python -m venv /opt/venv && /opt/venv/bin/pip install -r requirements/base.txt

FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=config.settings.base
# OCR of scanned PDFs and images (documents/extraction/ocr.py); more languages: tesseract-ocr-<lang>
# plus OCR_LANGUAGES.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ocrmypdf tesseract-ocr tesseract-ocr-eng \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system precis && useradd --system --gid precis --home /app precis
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=precis:precis . .
# collectstatic needs settings but no database: a throwaway key is enough here.
RUN SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput -v 0 \
    && mkdir -p /app/var/media && chown -R precis:precis /app/var
USER precis
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=3).status == 200 else 1)"
CMD ["python", "-m", "config.serve", "--access-log", "/dev/null", "-b", "0.0.0.0", "-p", "8000", "config.asgi:application"]

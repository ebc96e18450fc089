# The RIS image: one image for web (gunicorn), worker and beat (celery); see docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# gettext: compilemessages turns locale/*.po into the .mo files the Thai interface needs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The runtime packages only: the test tools and linters stay out of the image.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are hashed and compressed at build time (production storage needs DEBUG off, and production
# settings need a key and hosts: these throw-away values exist only for this build step).
RUN DJANGO_DEBUG=0 DJANGO_ALLOWED_HOSTS=build DJANGO_SECRET_KEY=collectstatic-only-not-a-runtime-secret-0123456789 \
        python manage.py collectstatic --noinput \
    && DJANGO_DEBUG=1 python manage.py compilemessages --ignore=.venv

# Run as an unprivileged user. /worklists is created here, owned by that user, so a named volume mounted
# there for the first time takes this ownership and the app can write the .wl files.
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ris \
    && mkdir -p /worklists /app/var \
    && chown ris:ris /worklists /app/var
USER ris

ENV WORKLIST_DIR=/worklists
# 8000 web (gunicorn), 11112 DICOM (serve_dicom), 2575 HL7 over MLLP (serve_hl7).
EXPOSE 8000 11112 2575

# The web service; the worker and beat services override the command.
CMD ["gunicorn", "ris.wsgi", "--workers", "2", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--timeout", "60"]

# ChatKit's image: `python manage.py serve` as a user that is not root. Built and run as
# docs/deployment.md says (compose.yaml adds PostgreSQL, Redis and the migration step).
FROM python:3.11-slim

# No .env file is read inside the image: the container's environment is the configuration.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CHATKIT_ENV_FILE=""

WORKDIR /app
# Wheels only (psycopg's binary build included): no compiler, no libpq to install.
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .

# Static files are collected into the image, once. Settings refuse to load with DEBUG off and
# no secret, so this step gets throwaway values that live only as long as the command.
RUN DEBUG=false ALLOWED_HOSTS=build.invalid CORS_ALLOWED_ORIGINS=https://build.invalid \
    SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    python manage.py collectstatic --noinput --verbosity 0

# The code stays root's and read-only to the server.
RUN useradd --system --uid 10001 --user-group --no-create-home chatkit
USER chatkit

EXPOSE 8000
# /health answers whatever the Host header says, so the probe needs no ALLOWED_HOSTS entry;
# urllib, since the slim image has no curl. Any answer but 2xx raises: exit status 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["python", "manage.py", "serve", "--host", "0.0.0.0", "--port", "8000"]

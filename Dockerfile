# Two images from one file: `web` (Django, CPU worker; no torch) and `gpu` (adds torch and open_clip).
FROM python:3.11-slim AS web
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements-web.txt .
# Extra packages, e.g. `--build-arg PIP_EXTRA=boto3` for media in an S3 bucket (README, "Deploy").
ARG PIP_EXTRA=""
RUN pip install -r requirements-web.txt $PIP_EXTRA
COPY . .
RUN DEBUG=1 python manage.py collectstatic --noinput -v0
EXPOSE 8000
CMD ["gunicorn", "mhp.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "4"]

FROM web AS gpu
COPY requirements-ml.txt .
RUN pip install -r requirements-ml.txt
CMD ["celery", "-A", "mhp", "worker", "-Q", "gpu", "--concurrency", "1"]

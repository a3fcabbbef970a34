FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY adapters ./adapters
COPY services ./services
RUN pip install --no-cache-dir .
ENV PAYLEDGER_DATA_DIR=/data
EXPOSE 8000
CMD ["payledger", "serve", "--host", "0.0.0.0", "--port", "8000"]

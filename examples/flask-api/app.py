"""Example producer for Sendhooks: the article's Flask API, for this project.

POST /api/send with a job as its JSON body adds the job to the Redis stream
the engine reads (XADD hooks * data '<json>') and answers with the entry's id:

    curl -X POST http://localhost:5001/api/send -H 'Content-Type: application/json' \
         -d '{"url": "http://127.0.0.1:8080/hook", "webhookId": "order-42", "data": {"order": 42}}'
    {"id": "1764438000000-0", "status": "sent to stream"}

The engine checks the job (a missing or non-http url ends as a failed status
event, visible in the monitor); this API only refuses bodies that are not a
JSON object.
"""

import json
import os

import redis
from flask import Flask, jsonify, request

app = Flask(__name__)

# REDIS_HOST and REDIS_PORT as the monitor names them; docker-compose.yaml
# sets REDIS_HOST=redis.
r = redis.Redis(
    host=os.environ.get("REDIS_HOST", "127.0.0.1"),
    port=int(os.environ.get("REDIS_PORT", "6379")),
    password=os.environ.get("REDIS_PASSWORD") or None,
    decode_responses=True,
)
# The engine's redisStreamName; "hooks" unless you changed it.
STREAM = os.environ.get("JOB_STREAM_KEY", "hooks")


@app.post("/api/send")
def send_data():
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        return jsonify({"error": "the body must be a JSON object (Content-Type: application/json)"}), 400
    stream_id = r.xadd(STREAM, {"data": json.dumps(payload)})
    return jsonify({"status": "sent to stream", "id": stream_id})


@app.get("/healthz")
def healthz():
    r.ping()
    return jsonify({"status": "ok"})


if __name__ == "__main__":
    # Flask's own server is enough for an example; put a WSGI server such as
    # gunicorn in front of anything real.
    app.run(host="0.0.0.0", port=5000)

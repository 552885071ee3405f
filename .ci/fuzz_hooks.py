"""schemathesis hooks for .ci/fuzz: what the schema says in words, for want of a keyword."""

import json

import schemathesis

# conversations.api.serializers.METADATA_MAX_BYTES (not imported: that needs Django set up).
METADATA_MAX_BYTES = 2048


@schemathesis.hook("filter_body").apply_to(path="/api/v1/sessions", method="POST")
def metadata_within_its_cap(ctx, body) -> bool:
    """Session metadata is capped at 2048 bytes as JSON, as its description says and no JSON
    Schema keyword can: a larger schema-valid object is rightly refused, so none is sent."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return not isinstance(metadata, dict) or len(json.dumps(metadata)) <= METADATA_MAX_BYTES

"""The stack's one custom-resource function: routes each event to the handler of its type.

One function instead of one per handler keeps a single inlined copy of the protocol in
the template (which must stay small enough to deploy without an S3 bucket).
"""

from .custom_resource import FAILED, send_response
from .s3_network_acl import handler as s3_network_acl

HANDLERS = {
    "Custom::S3NetworkAclEntries": s3_network_acl,
}


def handler(event, context):
    if not isinstance(event, dict):
        print(f"ignored event that is not an object: {event!r:.200}")
        return None
    if "RequestType" not in event and "NetworkAclId" in event:
        return s3_network_acl(event, context)  # the daily prefix-list sync
    route = HANDLERS.get(event.get("ResourceType"))
    if route:
        return route(event, context)
    if event.get("ResponseURL"):
        send_response(event, FAILED, f"No handler for {event.get('ResourceType')!r:.100}")
    return None

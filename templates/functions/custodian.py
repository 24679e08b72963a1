"""The stack's one custom-resource function: routes each event to the handler of its type.

One function instead of one per handler keeps a single inlined copy of the protocol in
the template (which must stay small enough to deploy without an S3 bucket).
"""

from .custom_resource import FAILED, SUCCESS, send_response
from .ecr_repository import handler as ecr_repository
from .empty_bucket import handler as empty_bucket
from .network_interface_cleanup import handler as network_interface_cleanup
from .s3_network_acl import handler as s3_network_acl
from .training_jobs_log_group import handler as training_jobs_log_group
from .vpc_lockdown import handler as vpc_lockdown
from .zone_plan import handler as zone_plan

HANDLERS = {
    "Custom::EmptyBucket": empty_bucket,
    "Custom::S3NetworkAclEntries": s3_network_acl,
    "Custom::TrainingJobsLogGroup": training_jobs_log_group,
    "Custom::VpcLockdown": vpc_lockdown,
    "Custom::NetworkInterfaceCleanup": network_interface_cleanup,
    "Custom::RepositoryOnDelete": ecr_repository,
    "Custom::ZonePlan": zone_plan,
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
        if event.get("RequestType") == "Delete":
            # Never block a stack delete: whatever this was, nothing here can own it any more.
            send_response(event, SUCCESS, "No handler; nothing to delete")
        else:
            send_response(event, FAILED, f"No handler for {event.get('ResourceType')!r:.100}")
    return None

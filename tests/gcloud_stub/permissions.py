"""Who may do what in Google Cloud, as Google documents it (stdlib only).

Shared by the gcloud stand-in (gcloud.py, beside this file) and by the tests that play what
Cloud Run and the central scaler do as their service identities (an instance start, a Cloud
Storage FUSE mount, a scale). Each fact names its source; a fact that could not be found in
Google's sources is marked UNCONFIRMED and kept as small as the call needs.

A binding is "SCOPE|ROLE|MEMBER" with an optional IAM condition; SCOPE is a resource key of
the stand-in's world (project:ID, secret:NAME, repository:LOCATION/NAME,
service-account:EMAIL, bucket:gs://NAME, worker-pool:REGION/NAME, service:REGION/NAME). A
binding on the project reaches every resource in it (IAM's resource hierarchy), a binding
on a resource reaches that resource (and, for a bucket, its objects).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

# --------------------------------------------------------------------------- roles
# Only the permissions the calls below need. Source: Google's IAM role reference,
# https://cloud.google.com/iam/docs/roles-permissions/<service> (run, iam, storage,
# secretmanager, artifactregistry, serviceusage, resourcemanager, logging, monitoring,
# cloudbuild), read through the search tool on 2026-12-03.
ROLES: dict[str, frozenset[str]] = {
    # https://cloud.google.com/iam/docs/roles-permissions/run
    "roles/run.admin": frozenset({
        "run.workerpools.get", "run.workerpools.list", "run.workerpools.create", "run.workerpools.update",
        "run.workerpools.delete", "run.workerpools.getIamPolicy", "run.workerpools.setIamPolicy",
        "run.services.get", "run.services.list", "run.services.create", "run.services.update",
        "run.services.delete", "run.services.getIamPolicy", "run.services.setIamPolicy", "run.operations.get",
    }),
    # "Can get but not set IAM policies" (the role's description on the same page).
    "roles/run.developer": frozenset({
        "run.workerpools.get", "run.workerpools.list", "run.workerpools.create", "run.workerpools.update",
        "run.workerpools.delete", "run.workerpools.getIamPolicy",
        "run.services.get", "run.services.list", "run.services.create", "run.services.update",
        "run.services.delete", "run.services.getIamPolicy", "run.operations.get",
    }),
    # https://cloud.google.com/iam/docs/roles-permissions/iam
    "roles/iam.serviceAccountUser": frozenset({"iam.serviceAccounts.actAs", "iam.serviceAccounts.get",
                                               "iam.serviceAccounts.list"}),
    "roles/iam.serviceAccountAdmin": frozenset({
        "iam.serviceAccounts.create", "iam.serviceAccounts.get", "iam.serviceAccounts.list",
        "iam.serviceAccounts.delete", "iam.serviceAccounts.update", "iam.serviceAccounts.getIamPolicy",
        "iam.serviceAccounts.setIamPolicy",
    }),
    # https://cloud.google.com/iam/docs/roles-permissions/storage
    "roles/storage.objectViewer": frozenset({"storage.objects.get", "storage.objects.list",
                                             "storage.folders.get", "storage.folders.list",
                                             "storage.managedFolders.get", "storage.managedFolders.list"}),
    "roles/storage.objectUser": frozenset({
        "storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete",
        "storage.objects.update", "storage.folders.get", "storage.folders.list", "storage.folders.create",
        "storage.folders.delete", "storage.managedFolders.get", "storage.managedFolders.list",
        "storage.managedFolders.create", "storage.managedFolders.delete",
    }),
    "roles/storage.objectCreator": frozenset({"storage.objects.create", "storage.folders.create",
                                              "storage.managedFolders.create"}),
    "roles/storage.admin": frozenset({
        "storage.buckets.get", "storage.buckets.list", "storage.buckets.create", "storage.buckets.update",
        "storage.buckets.getIamPolicy", "storage.buckets.setIamPolicy",
        "storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete",
        "storage.objects.update", "storage.folders.get", "storage.folders.list",
        "storage.managedFolders.get", "storage.managedFolders.list",
    }),
    # https://cloud.google.com/iam/docs/roles-permissions/secretmanager
    "roles/secretmanager.secretAccessor": frozenset({"secretmanager.versions.access"}),
    # "Secret Manager Secret Version Adder: Allows adding versions to existing secrets."
    "roles/secretmanager.secretVersionAdder": frozenset({"secretmanager.versions.add"}),
    "roles/secretmanager.viewer": frozenset({"secretmanager.secrets.get", "secretmanager.secrets.list",
                                             "secretmanager.versions.get", "secretmanager.versions.list"}),
    "roles/secretmanager.admin": frozenset({
        "secretmanager.secrets.get", "secretmanager.secrets.list", "secretmanager.secrets.create",
        "secretmanager.secrets.getIamPolicy", "secretmanager.secrets.setIamPolicy",
        "secretmanager.versions.add", "secretmanager.versions.access",
    }),
    # https://cloud.google.com/iam/docs/roles-permissions/artifactregistry
    "roles/artifactregistry.admin": frozenset({"artifactregistry.repositories.get",
                                               "artifactregistry.repositories.create",
                                               "artifactregistry.repositories.getIamPolicy",
                                               "artifactregistry.repositories.setIamPolicy",
                                               "artifactregistry.repositories.uploadArtifacts",
                                               "artifactregistry.repositories.downloadArtifacts"}),
    "roles/artifactregistry.writer": frozenset({"artifactregistry.repositories.get",
                                                "artifactregistry.repositories.uploadArtifacts",
                                                "artifactregistry.repositories.downloadArtifacts"}),
    # https://cloud.google.com/iam/docs/roles-permissions/serviceusage
    "roles/serviceusage.serviceUsageAdmin": frozenset({"serviceusage.services.list", "serviceusage.services.get",
                                                       "serviceusage.services.enable"}),
    "roles/serviceusage.serviceUsageViewer": frozenset({"serviceusage.services.list",
                                                        "serviceusage.services.get"}),
    # https://cloud.google.com/iam/docs/roles-permissions/resourcemanager
    "roles/resourcemanager.projectIamAdmin": frozenset({"resourcemanager.projects.get",
                                                        "resourcemanager.projects.getIamPolicy",
                                                        "resourcemanager.projects.setIamPolicy"}),
    "roles/browser": frozenset({"resourcemanager.projects.get", "resourcemanager.projects.getIamPolicy"}),
    # https://cloud.google.com/iam/docs/roles-permissions/logging
    "roles/logging.configWriter": frozenset({"logging.logMetrics.get", "logging.logMetrics.list",
                                             "logging.logMetrics.create", "logging.logMetrics.update"}),
    "roles/logging.logWriter": frozenset({"logging.logEntries.create"}),
    # https://cloud.google.com/iam/docs/roles-permissions/monitoring
    "roles/monitoring.alertPolicyEditor": frozenset({"monitoring.alertPolicies.get", "monitoring.alertPolicies.list",
                                                     "monitoring.alertPolicies.create"}),
    "roles/monitoring.metricWriter": frozenset({"monitoring.timeSeries.create"}),
    # https://cloud.google.com/iam/docs/roles-permissions/cloudbuild
    "roles/cloudbuild.builds.editor": frozenset({"cloudbuild.builds.create", "cloudbuild.builds.get",
                                                 "cloudbuild.builds.list"}),
}  # fmt: skip
# Most roles also carry resourcemanager.projects.get (the dumps of `gcloud iam roles describe`
# in darkbitio/gcp-iam-role-permissions and iann0036/iam-dataset, 2026-08-22, which agree with
# each other and with every page above that could be read): not the Service Usage roles,
# logging.logWriter, monitoring.alertPolicyEditor nor monitoring.metricWriter.
for _role in set(ROLES) - {"roles/serviceusage.serviceUsageAdmin", "roles/serviceusage.serviceUsageViewer",
                           "roles/logging.logWriter", "roles/monitoring.alertPolicyEditor",
                           "roles/monitoring.metricWriter"}:
    ROLES[_role] = ROLES[_role] | {"resourcemanager.projects.get"}

# --------------------------------------------------------------------------- conditions
# The subset of CEL that IAM conditions on these resources use here
# (https://cloud.google.com/iam/docs/conditions-attribute-reference,
# https://cloud.google.com/iam/docs/configuring-resource-based-access): resource.name,
# resource.type, and Cloud Storage's API attribute objectListPrefix (which releases before
# 2026-12 used; kept to evaluate the grant they left), joined by || and &&.
_ATOM = re.compile(
    r'^(?:resource\.name\.startsWith\("(?P<name_prefix>[^"]*)"\)'
    r'|resource\.name == "(?P<name>[^"]*)"'
    r'|resource\.type == "(?P<type>[^"]*)"'
    r'|api\.getAttribute\("storage\.googleapis\.com/objectListPrefix", ""\)\.startsWith\("(?P<list_prefix>[^"]*)"\))$'
)


@dataclass(frozen=True)
class Request:
    """One permission check: PERMISSION on the resource SCOPE (a world key), with the attributes
    an IAM condition sees (resource.name, resource.type, objectListPrefix of a list call)."""

    permission: str
    scope: str
    name: str = ""
    type: str = ""
    list_prefix: str | None = None

    def __str__(self) -> str:
        where = self.name or self.scope
        return f"{self.permission} on {where}" + (f" (list prefix '{self.list_prefix}')" if self.list_prefix
                                                   is not None else "")


def condition_allows(expression: str, request: Request) -> bool:
    """Evaluate an IAM condition of the subset above; anything else is refused loudly."""
    for alternative in expression.split("||"):
        results = []
        for atom in alternative.split("&&"):
            match = _ATOM.match(atom.strip())
            if not match:
                raise ValueError(f"IAM condition the stand-in cannot evaluate: {atom.strip()!r}")
            if match["name_prefix"] is not None:
                results.append(request.name.startswith(match["name_prefix"]))
            elif match["name"] is not None:
                results.append(request.name == match["name"])
            elif match["type"] is not None:
                results.append(request.type == match["type"])
            else:  # objectListPrefix: set on a list call; "" otherwise
                results.append((request.list_prefix or "").startswith(match["list_prefix"]))
        if all(results):
            return True
    return False


# Cloud Storage resource names and types as IAM conditions see them
# (https://cloud.google.com/storage/docs/access-control/iam#conditions: an object is
# projects/_/buckets/BUCKET/objects/NAME; a bucket-level call, a list among them, is the bucket).
BUCKET_TYPE = "storage.googleapis.com/Bucket"
OBJECT_TYPE = "storage.googleapis.com/Object"


def bucket_request(permission: str, bucket: str, list_prefix: str | None = None) -> Request:
    bucket = bucket.removeprefix("gs://")
    return Request(permission, f"bucket:gs://{bucket}", f"projects/_/buckets/{bucket}", BUCKET_TYPE, list_prefix)


def object_request(permission: str, bucket: str, name: str) -> Request:
    bucket = bucket.removeprefix("gs://")
    return Request(permission, f"bucket:gs://{bucket}", f"projects/_/buckets/{bucket}/objects/{name}", OBJECT_TYPE)


# --------------------------------------------------------------------------- a call's checks


def rsync_requests(source: str, destination: str) -> list[Request]:
    """gcloud storage rsync SRC gs://B/PATH[/] --recursive --delete-unmatched-destination-objects, as
    gcloud 578 makes it (commands/storage/rsync.py, command_lib/storage/rsync_command_util.py
    get_existing_or_placeholder_destination_resource, wildcard_iterator.py
    _try_getting_object_directly): a GET of the destination object itself (PATH, or PATH/ with
    the slash), a listing with prefix PATH (no slash, delimiter /) to tell a folder, the flat
    listing of PATH/ to compare, then an upload of each file (a replaced object needs delete too)."""
    bucket, _, path = destination.removeprefix("gs://").partition("/")
    folder = path.rstrip("/") + "/"
    requests = [
        object_request("storage.objects.get", bucket, path),
        bucket_request("storage.objects.list", bucket, list_prefix=path.rstrip("/")),
        bucket_request("storage.objects.list", bucket, list_prefix=folder),
    ]
    for root, _dirs, files in sorted(os.walk(source)):
        for name in sorted(files):
            relative = os.path.relpath(os.path.join(root, name), source).replace(os.sep, "/")
            if "__pycache__" not in relative and not relative.endswith(".pyc"):
                requests.append(object_request("storage.objects.create", bucket, folder + relative))
                # Replacing an object needs delete too (https://cloud.google.com/storage/docs/access-control/iam-permissions).
                requests.append(object_request("storage.objects.delete", bucket, folder + relative))
    return requests


# --------------------------------------------------------------------------- bindings


@dataclass(frozen=True)
class Binding:
    scope: str
    role: str
    member: str
    condition: str | None = None

    def grants(self, member: str, request: Request, projects: list[str]) -> bool:
        if self.member != member or request.permission not in ROLES.get(self.role, frozenset()):
            return False
        reaches = self.scope == request.scope or (self.scope.startswith("project:")
                                                  and self.scope.removeprefix("project:") in projects)
        return reaches and (self.condition is None or condition_allows(self.condition, request))


def bindings_of(world: dict) -> list[Binding]:
    """Every binding of the world: those the plan made (resources, conditions) and those its
    people were given beforehand ("held": SCOPE|ROLE|MEMBER[|CONDITION EXPRESSION])."""
    found = []
    conditions = world.get("conditions", {})
    for key in world.get("resources", []):
        if key.startswith("binding:"):
            scope, role, member, *_title = key.removeprefix("binding:").split("|")
            found.append(Binding(scope, role, member, conditions.get(key)))
    for held in world.get("held", []):
        scope, role, member, *condition = held.split("|", 3)
        found.append(Binding(scope, role, member, condition[0] if condition else None))
    return found


def granting(world: dict, member: str, request: Request) -> list[Binding]:
    """The bindings that let MEMBER make REQUEST (none: it is refused)."""
    projects = world.get("projects", [])
    return [binding for binding in bindings_of(world) if binding.grants(member, request, projects)]

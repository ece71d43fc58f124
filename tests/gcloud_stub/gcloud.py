"""A recording stand-in for `gcloud`, for deploy.sh's tests (stdlib only).

It is run as `gcloud` (a wrapper on PATH execs it) and:
- appends its argv, as a JSON list starting with "gcloud", to $GCLOUD_STUB_LOG;
- answers describe/list/version calls from the world in $GCLOUD_STUB_STATE (a JSON
  file, first written from a scenario), and records what a change creates there, so
  a second run sees what the first one made;
- fails a call on request ("fail" rules) or interrupts the whole deploy.sh run at
  the n-th changing call ("interrupt_at_mutation"), before or after that call took
  effect, the way Ctrl-C or a lost connection would.

It never holds nor prints a secret value: `gcloud secrets versions access` is refused.

The world (state file):
  gcloud_version         "578.0.0"
  projects               project ids that can be reached
  resources              keys of what exists: api:NAME, secret:NAME, repository:LOCATION/NAME,
                         service-account:EMAIL, binding:KIND:NAME|ROLE|MEMBER, bucket:gs://NAME,
                         binding:bucket:gs://NAME|ROLE|MEMBER|TITLE (a conditional binding; its
                         expression is kept in "conditions" under the same key),
                         metric:NAME, alert-policy:DISPLAY NAME, image:TAG, worker-pool:REGION/NAME,
                         service:REGION/NAME, dags:gs://BUCKET/PATH
  fail                   [{"command": "run worker-pools deploy", "times": 1, "message": "..."}]
  interrupt_at_mutation  n (one-shot), interrupt_after_effect: true/false
  mutations              how many changing calls were made so far
  account                the caller (gcloud's active account), e.g. "user:deployer@example.com"
  held                   bindings people hold beforehand, "SCOPE|ROLE|MEMBER[|CONDITION]"
                         (the deployer's documented roles); with the plan's own bindings they
                         decide each call (permissions.py): a call the account may not make
                         fails as Google fails it, naming the permission, and is kept in
                         "denied"; "used" keeps "MEMBER|ROLE|SCOPE" of every binding that
                         allowed a call.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys

from calls import command_words, is_mutating, verb  # the stand-in runs from its own folder
from permissions import Request, bucket_request, granting, object_request, rsync_requests

PROJECT_NUMBER = "123456789012"


class GcloudError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def flags_of(argv: list[str]) -> dict[str, str | bool]:
    flags: dict[str, str | bool] = {}
    for word in argv:
        if word == "--":
            break
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            flags[name] = value if sep else True
    return flags


class World:
    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, encoding="utf-8") as state:
            self.data = json.load(state)
        self.data.setdefault("resources", [])
        self.data.setdefault("mutations", 0)

    def has(self, key: str) -> bool:
        return key in self.data["resources"]

    def add(self, key: str) -> None:
        if key not in self.data["resources"]:
            self.data["resources"].append(key)

    def keys(self, prefix: str) -> list[str]:
        return [key[len(prefix) :] for key in self.data["resources"] if key.startswith(prefix)]

    def save(self) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as state:
            state.write(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.path)


def need(world: World, flags: dict[str, str | bool], name: str) -> str:
    value = flags.get(name)
    if not isinstance(value, str) or not value:
        raise GcloudError(f"ERROR: (gcloud) --{name} is required (the stand-in expects --{name}=VALUE)", 2)
    if name == "project" and value not in world.data.get("projects", []):
        raise GcloudError(f"ERROR: (gcloud) project [{value}] not found or no permission", 1)
    return value


def exists_or_fail(world: World, key: str, what: str) -> None:
    if not world.has(key):
        raise GcloudError(f"ERROR: (gcloud) NOT_FOUND: {what} was not found", 1)


def create_once(world: World, key: str, what: str) -> None:
    if world.has(key):
        raise GcloudError(f"ERROR: (gcloud) ALREADY_EXISTS: {what} already exists", 1)
    world.add(key)


def print_bindings(world: World, resource: str, flags: dict[str, str | bool] | None = None) -> None:
    """One line per (binding, member), as --flatten=bindings[].members --format=value(...) prints it."""
    with_title = "bindings.condition.title" in str((flags or {}).get("format", ""))
    for key in world.keys(f"binding:{resource}|"):
        role, member, *title = key.split("|")
        print(f"{role}\t{member}\t{title[0] if title else ''}" if with_title else f"{role}\t{member}")


def parse_condition(value: str | bool | None) -> dict[str, str] | None:
    """--condition as gcloud's iam_util parses it: None, or expression= and title= (^D^ sets the delimiter)."""
    if value is None or value == "None":
        return None
    text = str(value)
    delimiter = ","
    if text.startswith("^") and text.find("^", 1) > 1:
        delimiter, text = text[1 : text.find("^", 1)], text[text.find("^", 1) + 1 :]
    pairs = dict(item.split("=", 1) for item in text.split(delimiter) if "=" in item)
    if set(pairs) - {"expression", "title", "description"} or not pairs.get("expression") or not pairs.get("title"):
        raise GcloudError("ERROR: (gcloud) --condition needs expression= and title= (description= at most)", 2)
    return pairs


def add_binding(world: World, resource: str, flags: dict[str, str | bool]) -> None:
    member, role = need(world, flags, "member"), need(world, flags, "role")
    account = member.removeprefix("serviceAccount:")
    if account != member and not world.has(f"service-account:{account}"):
        raise GcloudError(f"ERROR: (gcloud) INVALID_ARGUMENT: Service account {account} does not exist.")
    world.add(f"binding:{resource}|{role}|{member}")


def bucket_binding(world: World, bucket: str, verb: str, flags: dict[str, str | bool]) -> None:
    resource = f"bucket:{bucket}"
    conditional = [key for key in world.keys(f"binding:{resource}|") if key.count("|") == 2]
    if "condition" not in flags and conditional:
        # gcloud refuses to guess without a prompt (iam_util.PromptForConditions).
        raise GcloudError("ERROR: (gcloud) the policy has conditional bindings: pass --condition (or --condition=None)")
    condition = parse_condition(flags.get("condition"))
    member, role = need(world, flags, "member"), need(world, flags, "role")
    key = f"binding:{resource}|{role}|{member}" + (f"|{condition['title']}" if condition else "")
    if verb == "remove-iam-policy-binding":
        if not world.has(key):
            raise GcloudError("ERROR: (gcloud) Policy binding with this principal, role and condition not found")
        world.data["resources"].remove(key)
        world.data.get("conditions", {}).pop(key, None)
        return
    if condition is None:
        add_binding(world, resource, flags)
        return
    account = member.removeprefix("serviceAccount:")
    if account != member and not world.has(f"service-account:{account}"):
        raise GcloudError(f"ERROR: (gcloud) INVALID_ARGUMENT: Service account {account} does not exist.")
    world.add(key)
    world.data.setdefault("conditions", {})[key] = condition["expression"]


def answer(world: World, argv: list[str]) -> str | None:  # noqa: C901 - one branch per gcloud command
    """Carry out one call; return what it prints on stdout."""
    words, flags = command_words(argv), flags_of(argv)
    path = " ".join(words)

    if words == ["version"]:
        version = world.data.get("gcloud_version", "578.0.0")
        return version if flags.get("format") == 'value("Google Cloud SDK")' else f"Google Cloud SDK {version}"

    if words[:3] == ["secrets", "versions", "access"]:
        raise GcloudError("gcloud stand-in: refusing `secrets versions access`: deploy.sh must never read a secret", 3)

    if words[:2] == ["projects", "describe"]:
        if words[2] not in world.data.get("projects", []):
            raise GcloudError(f"ERROR: (gcloud.projects.describe) no permission to access project [{words[2]}]")
        return words[2]
    if words[:2] == ["projects", "get-iam-policy"]:
        need(world, {"project": words[2]}, "project")
        print_bindings(world, f"project:{words[2]}")
        return None
    if words[:2] == ["projects", "add-iam-policy-binding"]:
        need(world, {"project": words[2]}, "project")
        add_binding(world, f"project:{words[2]}", flags)
        return None

    if words[:2] == ["services", "list"]:
        need(world, flags, "project")
        return "\n".join(sorted(world.keys("api:"))) or None
    if words[:2] == ["services", "enable"]:
        need(world, flags, "project")
        for api in words[2:]:
            world.add(f"api:{api}")
        return None

    if words[:2] == ["secrets", "create"]:
        need(world, flags, "project")
        if flags.get("data-file") != "-":
            raise GcloudError("gcloud stand-in: the docs pass the value on stdin (--data-file=-)")
        sys.stdin.read()  # the value: read like gcloud does, never stored, recorded nor printed
        create_once(world, f"secret:{words[2]}", f"secret [{words[2]}]")
        return None

    if words[:3] == ["secrets", "versions", "add"]:  # the platform's rotation (platform/README.md)
        need(world, flags, "project")
        if flags.get("data-file") != "-":
            raise GcloudError("gcloud stand-in: the docs pass the value on stdin (--data-file=-)")
        if not world.has("api:secretmanager.googleapis.com"):
            raise GcloudError("ERROR: (gcloud) Secret Manager API has not been used in this project or it is disabled")
        exists_or_fail(world, f"secret:{words[3]}", f"secret [{words[3]}]")
        if not sys.stdin.read():  # the value: read like gcloud does, never stored, recorded nor printed
            raise GcloudError("ERROR: (gcloud.secrets.versions.add) INVALID_ARGUMENT: the payload is empty")
        print(f"Created version [2] of the secret [{words[3]}].", file=sys.stderr)
        return None

    if words[0] == "secrets" and words[1] in {"describe", "get-iam-policy", "add-iam-policy-binding"}:
        need(world, flags, "project")
        if not world.has("api:secretmanager.googleapis.com"):
            raise GcloudError("ERROR: (gcloud) Secret Manager API has not been used in this project or it is disabled")
        exists_or_fail(world, f"secret:{words[2]}", f"secret [{words[2]}]")
        if words[1] == "describe":
            return f"projects/{PROJECT_NUMBER}/secrets/{words[2]}"
        if words[1] == "get-iam-policy":
            print_bindings(world, f"secret:{words[2]}")
            return None
        add_binding(world, f"secret:{words[2]}", flags)
        return None

    if words[:2] == ["artifacts", "repositories"]:
        project, location = need(world, flags, "project"), need(world, flags, "location")
        key = f"repository:{location}/{words[3]}"
        if words[2] == "describe":
            exists_or_fail(world, key, f"repository [{words[3]}]")
            return f"projects/{project}/locations/{location}/repositories/{words[3]}"
        if words[2] == "create":
            create_once(world, key, f"repository [{words[3]}]")
            return None
        if words[2] == "add-iam-policy-binding":
            exists_or_fail(world, key, f"repository [{words[3]}]")
            add_binding(world, key, flags)
            return None

    if words[:2] == ["iam", "service-accounts"]:
        project = need(world, flags, "project")
        if words[2] == "describe":
            exists_or_fail(world, f"service-account:{words[3]}", f"service account [{words[3]}]")
            return words[3]
        if words[2] == "create":
            create_once(world, f"service-account:{words[3]}@{project}.iam.gserviceaccount.com", "service account")
            return None
        exists_or_fail(world, f"service-account:{words[3]}", f"service account [{words[3]}]")
        if words[2] == "get-iam-policy":
            print_bindings(world, f"service-account:{words[3]}")
            return None
        if words[2] == "add-iam-policy-binding":
            add_binding(world, f"service-account:{words[3]}", flags)
            return None

    if words[:2] == ["storage", "buckets"]:
        need(world, flags, "project")
        bucket = words[3]
        if words[2] == "create":
            create_once(world, f"bucket:{bucket}", f"bucket [{bucket}]")
            return None
        exists_or_fail(world, f"bucket:{bucket}", f"bucket [{bucket}]")
        if words[2] == "describe":
            return bucket.removeprefix("gs://")
        if words[2] == "get-iam-policy":  # gcloud storage asks for policy version 3: conditions are shown
            print_bindings(world, f"bucket:{bucket}", flags)
            return None
        if words[2] in {"add-iam-policy-binding", "remove-iam-policy-binding"}:
            bucket_binding(world, bucket, words[2], flags)
            return None

    if words[:2] == ["storage", "rsync"]:
        need(world, flags, "project")
        source, destination = words[2], words[3]
        if not os.path.isdir(source):
            raise GcloudError(f"ERROR: (gcloud.storage.rsync) {source} is not a folder")
        exists_or_fail(world, f"bucket:gs://{destination.removeprefix('gs://').split('/', 1)[0]}", "bucket")
        world.add(f"dags:{destination}")
        return None

    if words[:2] == ["logging", "metrics"]:
        need(world, flags, "project")
        if words[2] == "describe":
            exists_or_fail(world, f"metric:{words[3]}", f"metric [{words[3]}]")
            return words[3]
        if words[2] == "create":
            if not flags.get("log-filter"):
                raise GcloudError("ERROR: (gcloud.logging.metrics.create) --log-filter is required", 2)
            create_once(world, f"metric:{words[3]}", f"metric [{words[3]}]")
            return None

    if words[:2] == ["monitoring", "policies"]:
        project = need(world, flags, "project")
        if words[2] == "list":
            wanted = re.fullmatch(r'displayName="(.*)"', str(flags.get("filter", "")))
            if not wanted:
                raise GcloudError('gcloud stand-in: policies list needs --filter=displayName="NAME"', 2)
            found = world.has(f"alert-policy:{wanted.group(1)}")
            return f"projects/{project}/alertPolicies/4242" if found else None
        if words[2] == "create":
            name = need(world, flags, "display-name")
            if not world.has(f"metric:{str(flags.get('condition-filter', '')).split('/user/')[-1].strip(chr(34))}"):
                raise GcloudError("ERROR: (gcloud.monitoring.policies.create) the condition's metric does not exist")
            world.add(f"alert-policy:{name}")  # like Cloud Monitoring, a second one would be a duplicate
            return None

    if words[:2] == ["builds", "submit"]:
        need(world, flags, "project")
        config = flags.get("config")
        if not isinstance(config, str) or not os.path.isfile(config):
            raise GcloudError(f"ERROR: (gcloud.builds.submit) cannot read the build config [{config}]")
        substitutions = dict(
            item.split("=", 1) for item in str(flags.get("substitutions", "")).split(",") if "=" in item
        )
        world.add(f"image:{substitutions.get('_TAG', '')}")
        return None

    if path.startswith(("run worker-pools deploy", "run deploy")):
        kind = "worker-pool" if words[1] == "worker-pools" else "service"
        name = words[3] if kind == "worker-pool" else words[2]
        region = need(world, flags, "region")
        need(world, flags, "project")
        image = need(world, flags, "image")
        exists_or_fail(world, f"image:{image.rsplit(':', 1)[-1]}", f"image [{image}]")
        account = need(world, flags, "service-account")
        exists_or_fail(world, f"service-account:{account}", f"service account [{account}]")
        env_file = flags.get("env-vars-file")
        if not isinstance(env_file, str) or not os.path.isfile(env_file):
            raise GcloudError(f"ERROR: (gcloud.run) cannot read --env-vars-file [{env_file}]")
        key = f"{kind}:{region}/{name}"
        if kind == "service" and "no-allow-unauthenticated" in flags and world.has(key):
            # gcloud 578 sets an existing service's IAM policy for this flag, and only warns when
            # refused (serverless_operations.py _HandleAllowUnauthenticated): the deploy goes on.
            setter = Request("run.services.setIamPolicy", key)
            if world.data.get("account") and not granting(world.data, world.data["account"], setter):
                print("WARNING: Setting IAM policy failed, try \"gcloud beta run services remove-iam-policy-binding"
                      f" --region={region} --member=allUsers --role=roles/run.invoker {name}\"", file=sys.stderr)
        world.add(key)
        return None
    if words[:2] == ["run", "worker-pools"] and words[2] in {"get-iam-policy", "add-iam-policy-binding"}:
        need(world, flags, "project")
        key = f"worker-pool:{need(world, flags, 'region')}/{words[3]}"
        exists_or_fail(world, key, f"worker pool [{words[3]}]")
        if words[2] == "get-iam-policy":
            print_bindings(world, key)
        else:
            add_binding(world, key, flags)
        return None
    if path.startswith(("run worker-pools describe", "run services describe")):
        kind = "worker-pool" if words[1] == "worker-pools" else "service"
        need(world, flags, "project")
        exists_or_fail(world, f"{kind}:{need(world, flags, 'region')}/{words[3]}", f"{kind} [{words[3]}]")
        return f"{kind} {words[3]}: Ready"

    raise GcloudError(f"gcloud stand-in: unknown command: {' '.join(argv)}", 2)


# --------------------------------------------------------------------------- permissions
# Each call's permissions, from the API method gcloud 578 calls for it and Google's permission
# reference of that API (https://cloud.google.com/iam/docs/permissions-reference, and per product:
# https://cloud.google.com/run/docs/reference/iam/permissions,
# https://cloud.google.com/storage/docs/access-control/iam-json). An `add-iam-policy-binding`
# is gcloud's read-modify-write: getIamPolicy, then setIamPolicy (iam_util.AddBindingToIamPolicy
# on the policy it read). A deploy as --service-account needs actAs on that account
# (https://cloud.google.com/run/docs/configuring/services/service-identity#permissions).


def needs(world: World, words: list[str], flags: dict[str, str | bool]) -> list[Request]:  # noqa: C901, PLR0911, PLR0912
    """The permission checks one call makes (the first refused one fails it)."""
    project = str(flags.get("project", ""))
    at_project = f"project:{project}"

    def policy_change(scope: str, get: str, set_: str) -> list[Request]:
        return [Request(get, scope), Request(set_, scope)]

    head = " ".join(words[:3])
    if words[:1] == ["version"]:
        return []
    if words[:1] == ["projects"]:
        scope = f"project:{words[2]}"
        return {
            "describe": [Request("resourcemanager.projects.get", scope)],
            "get-iam-policy": [Request("resourcemanager.projects.getIamPolicy", scope)],
            "add-iam-policy-binding": policy_change(scope, "resourcemanager.projects.getIamPolicy",
                                                    "resourcemanager.projects.setIamPolicy"),
        }.get(words[1], [])
    if words[:2] == ["services", "list"]:
        return [Request("serviceusage.services.list", at_project)]
    if words[:2] == ["services", "enable"]:
        return [Request("serviceusage.services.enable", at_project)]
    if words[:3] == ["secrets", "versions", "add"]:
        return [Request("secretmanager.versions.add", f"secret:{words[3]}")]
    if words[:1] == ["secrets"]:
        scope = f"secret:{words[2]}"
        return {
            "create": [Request("secretmanager.secrets.create", at_project),
                       Request("secretmanager.versions.add", at_project)],
            "describe": [Request("secretmanager.secrets.get", scope)],
            "get-iam-policy": [Request("secretmanager.secrets.getIamPolicy", scope)],
            "add-iam-policy-binding": policy_change(scope, "secretmanager.secrets.getIamPolicy",
                                                    "secretmanager.secrets.setIamPolicy"),
        }.get(words[1], [])
    if words[:2] == ["artifacts", "repositories"]:
        scope = f"repository:{flags.get('location')}/{words[3]}"
        return {
            "describe": [Request("artifactregistry.repositories.get", scope)],
            "create": [Request("artifactregistry.repositories.create", at_project)],
            "add-iam-policy-binding": policy_change(scope, "artifactregistry.repositories.getIamPolicy",
                                                    "artifactregistry.repositories.setIamPolicy"),
        }.get(words[2], [])
    if words[:2] == ["iam", "service-accounts"]:
        scope = f"service-account:{words[3]}"
        return {
            "describe": [Request("iam.serviceAccounts.get", scope)],
            "create": [Request("iam.serviceAccounts.create", at_project)],
            "get-iam-policy": [Request("iam.serviceAccounts.getIamPolicy", scope)],
            "add-iam-policy-binding": policy_change(scope, "iam.serviceAccounts.getIamPolicy",
                                                    "iam.serviceAccounts.setIamPolicy"),
        }.get(words[2], [])
    if words[:2] == ["storage", "buckets"]:
        bucket = words[3]
        return {
            "describe": [bucket_request("storage.buckets.get", bucket)],
            "create": [Request("storage.buckets.create", at_project)],
            "get-iam-policy": [bucket_request("storage.buckets.getIamPolicy", bucket)],
            "add-iam-policy-binding": [bucket_request("storage.buckets.getIamPolicy", bucket),
                                       bucket_request("storage.buckets.setIamPolicy", bucket)],
            "remove-iam-policy-binding": [bucket_request("storage.buckets.getIamPolicy", bucket),
                                          bucket_request("storage.buckets.setIamPolicy", bucket)],
        }.get(words[2], [])
    if words[:2] == ["storage", "rsync"] and os.path.isdir(words[2]):
        return rsync_requests(words[2], words[3])
    if words[:2] == ["logging", "metrics"]:
        return {"describe": [Request("logging.logMetrics.get", at_project)],
                "create": [Request("logging.logMetrics.create", at_project)]}.get(words[2], [])
    if words[:2] == ["monitoring", "policies"]:
        return {"list": [Request("monitoring.alertPolicies.list", at_project)],
                "create": [Request("monitoring.alertPolicies.create", at_project)]}.get(words[2], [])
    if words[:2] == ["builds", "submit"]:
        # The source goes to gs://PROJECT_cloudbuild/source/ first (submit_util, staging_bucket_util).
        staged = object_request("storage.objects.create", f"{project}_cloudbuild", "source/archive.tgz")
        return [Request("cloudbuild.builds.create", at_project), staged]
    if head.startswith(("run worker-pools deploy", "run deploy")):
        pools = words[1] == "worker-pools"
        kind, api = ("worker-pool", "run.workerpools") if pools else ("service", "run.services")
        scope = f"{kind}:{flags.get('region')}/{words[3] if pools else words[2]}"
        verb = "update" if world.has(scope) else "create"
        return [Request(f"{api}.get", scope), Request(f"{api}.{verb}", scope),
                Request("iam.serviceAccounts.actAs", f"service-account:{flags.get('service-account')}")]
    if words[:2] == ["run", "worker-pools"] or words[:2] == ["run", "services"]:
        kind, api = ("worker-pool", "run.workerpools") if words[1] == "worker-pools" else ("service", "run.services")
        scope = f"{kind}:{flags.get('region')}/{words[3]}"
        return {
            "describe": [Request(f"{api}.get", scope)],
            "get-iam-policy": [Request(f"{api}.getIamPolicy", scope)],
            "add-iam-policy-binding": policy_change(scope, f"{api}.getIamPolicy", f"{api}.setIamPolicy"),
        }.get(words[2], [])
    return []


def check_permissions(world: World, argv: list[str]) -> None:
    """Refuse the call, as Google does, when the account lacks one of its permissions."""
    account = world.data.get("account")
    if not account:
        return
    words, flags = command_words(argv), flags_of(argv)
    for request in needs(world, words, flags):
        allowing = granting(world.data, account, request)
        if not allowing:
            world.data.setdefault("denied", []).append(f"{account}: {request}")
            command = ".".join(words[: words.index(verb(argv)) + 1])
            raise GcloudError(
                f"ERROR: (gcloud.{command}) PERMISSION_DENIED: Permission '{request.permission}' denied"
                f" on resource '{request.name or request.scope}' for {account} (or it may not exist)."
            )
        used = world.data.setdefault("used", [])
        for binding in allowing:
            entry = f"{binding.member}|{binding.role}|{binding.scope}"
            if entry not in used:
                used.append(entry)


def interrupt_caller() -> int:
    """Stop the script that called us (deploy.sh) the way a Ctrl-C or a closed terminal does."""
    os.kill(os.getppid(), signal.SIGTERM)
    return 128 + signal.SIGTERM


def main(argv: list[str]) -> int:
    log_path, state_path = os.environ.get("GCLOUD_STUB_LOG"), os.environ.get("GCLOUD_STUB_STATE")
    if not log_path or not state_path:
        print("gcloud stand-in: set GCLOUD_STUB_LOG and GCLOUD_STUB_STATE", file=sys.stderr)
        return 2
    with open(log_path, "a", encoding="utf-8") as log:
        log.write(json.dumps(["gcloud", *argv]) + "\n")

    world = World(state_path)
    interrupt = False
    if is_mutating(argv):
        world.data["mutations"] += 1
        if world.data.get("interrupt_at_mutation") == world.data["mutations"]:
            world.data["interrupt_at_mutation"] = None  # one-shot: the rerun is not interrupted
            interrupt = True
    path = " ".join(command_words(argv))
    for rule in world.data.get("fail", []):
        if rule.get("times", 1) > 0 and path.startswith(rule["command"]):
            rule["times"] = rule.get("times", 1) - 1
            world.save()
            print(rule.get("message", f"ERROR: (gcloud) {path} failed"), file=sys.stderr)
            return 1

    if interrupt and not world.data.get("interrupt_after_effect", True):
        world.save()
        return interrupt_caller()
    try:
        check_permissions(world, argv)
        out = answer(world, argv)
    except GcloudError as error:
        world.save()
        print(error, file=sys.stderr)
        return error.code
    world.save()
    if interrupt:
        return interrupt_caller()
    if out:
        print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""The access policy for Mosquitto 2's dynamic-security plugin: its JSON file and the
``$CONTROL/dynamic-security/v1`` commands that bring a running broker to the same state.

Why not ``acl_file``: it authorises a ``$share/{group}/...`` SUBSCRIBE as granted whatever
the group and checks only the plain topic at delivery, *after* picking the group member, so
any certificate could join the control room's group and swallow alerts (docs/threat-model.md).
The plugin checks the SUBSCRIBE against the whole filter, ``$share`` prefix included, so the
alerts role gets ``subscribePattern $share/{group}/...`` for its configured group only.

One dynsec client per active identity (username = certificate CN; TLS identities need no
password), one role per device (its exact topics) and one per central role. Revoked
identities are absent: the plugin refuses every publish and subscribe of a username it does
not know. Everything not allowed is denied (``defaultACLAccess``), unsubscribe excepted.
Pure: data out (docs/broker.md).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from provisioning.policy import DEVICE, Access, IdentityAccess

# Refuse by default: a publish, a delivery or a subscription needs an allowing ACL.
DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
# Answers that mean "already as wanted" when a sync repeats a change the broker has.
ALREADY_DONE = ("already exists", "not found")


def role_name(identity: IdentityAccess) -> str:
    """A device gets its own role (its exact topics); central clients share their role's."""
    if identity.kind == DEVICE:
        return f"lfr-device-{identity.username}"
    return f"lfr-{identity.kind}"


def acls(identity: IdentityAccess) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rule in identity.rules:
        if rule.access == Access.WRITE:
            out.append(_acl("publishClientSend", rule.topic_filter))
            continue
        # Reading takes two rights: subscribing to the filter (the $share/{group}/ one when
        # the rule names a group) and receiving messages on the plain topic.
        wild = "+" in rule.subscription or "#" in rule.subscription
        kind = "subscribePattern" if wild else "subscribeLiteral"
        out.append(_acl(kind, rule.subscription))
        out.append(_acl("publishClientReceive", rule.topic_filter))
    return out


def _acl(acltype: str, topic: str) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "priority": 0, "allow": True}


def dynsec_state(
    policy: Sequence[IdentityAccess],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(clients, roles) for the active identities, in the policy's order."""
    clients: list[dict[str, Any]] = []
    roles: dict[str, dict[str, Any]] = {}
    for identity in policy:
        if not identity.active:
            continue
        name = role_name(identity)
        roles.setdefault(name, {"rolename": name, "acls": acls(identity)})
        clients.append({"username": identity.username, "roles": [{"rolename": name}]})
    return clients, list(roles.values())


def render_dynsec(policy: Sequence[IdentityAccess]) -> str:
    """The plugin's ``plugin_opt_config_file``, read at broker start (not on SIGHUP); the
    plugin rewrites it itself after every change made over ``$CONTROL``."""
    clients, roles = dynsec_state(policy)
    doc = {
        "defaultACLAccess": DEFAULT_ACL_ACCESS,
        "clients": clients,
        "groups": [],
        "roles": roles,
    }
    return json.dumps(doc, indent=2) + "\n"


def sync_commands(policy: Sequence[IdentityAccess]) -> list[dict[str, Any]]:
    """Commands that make a running broker match ``policy``: create every active identity's
    role and client (the broker answers "already exists" for those it has), delete every
    revoked one (``deleteClient`` also disconnects it at once; ``disableClient`` would not
    stop a certificate login). A role whose ACLs changed is not modified: that needs a
    restart with the rendered file (docs/broker.md)."""
    clients, roles = dynsec_state(policy)
    commands: list[dict[str, Any]] = [{"command": "createRole", **role} for role in roles]
    commands += [{"command": "createClient", **client} for client in clients]
    for identity in policy:
        if identity.active:
            continue
        commands.append({"command": "deleteClient", "username": identity.username})
        if identity.kind == DEVICE:
            commands.append({"command": "deleteRole", "rolename": role_name(identity)})
    return commands


def failed_responses(payload: bytes) -> list[str]:
    """The errors in a ``$CONTROL/dynamic-security/v1/response`` that are real failures
    ("already exists" and "not found" mean the broker already had the change)."""
    try:
        doc = json.loads(payload)
    except ValueError:
        return ["the broker's response is not JSON"]
    if not isinstance(doc, dict) or not isinstance(doc.get("responses"), list):
        return ["the broker's response holds no responses"]
    errors = []
    for response in doc["responses"]:
        if not isinstance(response, dict):
            errors.append("a response is not an object")
            continue
        error = response.get("error")
        if error and not any(text in str(error).lower() for text in ALREADY_DONE):
            errors.append(f"{response.get('command', '?')}: {error}")
    return errors

"""Create memoria's three accounts on the shared tracking server and grant each only what its role needs.

    MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=... MLFLOW_TRACKING_SERVER_CERT_PATH=ca.pem \\
    MEMORIA_TRAINER_PASSWORD=... MEMORIA_PROMOTER_PASSWORD=... MEMORIA_SERVING_PASSWORD=... \\
        .venv/bin/python scripts/registry_accounts.py --uri https://mlflow.example.org:5000

Run as the server's admin (scripts/tracking_server.py starts the server); running it again sets the passwords
and grants anew. What each account may do, per MLflow 3.17.2's permission checks (mlflow/server/auth):

  trainer   EDIT on the task experiments (runs, metrics, bundles as run artifacts); READ on the registered models
  promoter  EDIT on the task experiments, the alias-history experiment and the registered models: registers
            versions and moves `champion` (`make export`, `make rollback`); MANAGE on each task's promotion lock
            (`<task>.promotion-lock`, training/registry/promotion_lock.py), whose tickets it deletes
  serving   READ on the task experiments (bundle downloads) and on the registered models (the alias)

Why the trainer does not register versions: MLflow asks the same permission (EDIT, "update", on the registered
model) to create a version and to move an alias, so an account that can register `sentiment` versions can also
make any of them champion. Registering therefore belongs to the promoter, who exports the best logged run,
registers it, gates it and moves the alias in one step. The served names are created here, by the admin, before
anyone else can: without MLflow workspaces any account may create experiments and registered models, and the
creator of one is granted MANAGE on it, so a trainer that created `translation` first would own its alias.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.server.auth.client import AuthServiceClient

from serving.contract.names import ALIAS_HISTORY_EXPERIMENT, PROMOTION_LOCK_SUFFIX, TASKS

EXPERIMENT = "experiment"
REGISTERED_MODEL = "registered_model"
MIN_PASSWORD_CHARS = 16  # MLflow's own floor is 12


@dataclass(frozen=True)
class Grant:
    resource_type: str  # EXPERIMENT (by name here, by id on the server) or REGISTERED_MODEL
    name: str
    permission: str  # READ | EDIT | MANAGE (MLflow's levels)


@dataclass(frozen=True)
class Account:
    username: str
    password_env: str
    grants: tuple[Grant, ...]


def _each(resource_type: str, names: tuple[str, ...], permission: str) -> tuple[Grant, ...]:
    return tuple(Grant(resource_type, name, permission) for name in names)


# A gate takes a ticket (a version) of the task's lock model and releases it by deleting that version; deleting a
# version asks MANAGE. The lock model is never served, so MANAGE there moves no alias that matters.
LOCKS = tuple(f"{task}{PROMOTION_LOCK_SUFFIX}" for task in TASKS)


ACCOUNTS = (
    Account(
        "trainer",
        "MEMORIA_TRAINER_PASSWORD",
        _each(EXPERIMENT, TASKS, "EDIT")
        + _each(EXPERIMENT, (ALIAS_HISTORY_EXPERIMENT,), "READ")
        + _each(REGISTERED_MODEL, TASKS, "READ"),
    ),
    Account(
        "promoter",
        "MEMORIA_PROMOTER_PASSWORD",
        _each(EXPERIMENT, (*TASKS, ALIAS_HISTORY_EXPERIMENT), "EDIT")
        + _each(REGISTERED_MODEL, TASKS, "EDIT")
        + _each(REGISTERED_MODEL, LOCKS, "MANAGE"),
    ),
    Account(
        "serving",
        "MEMORIA_SERVING_PASSWORD",
        _each(EXPERIMENT, TASKS, "READ") + _each(REGISTERED_MODEL, TASKS, "READ"),
    ),
)


def passwords(env: dict[str, str]) -> dict[str, str]:
    """Each account's password from its variable; refuses (naming the variable) one that is missing or short."""
    found = {}
    for account in ACCOUNTS:
        value = env.get(account.password_env, "")
        if len(value) < MIN_PASSWORD_CHARS:
            raise SystemExit(
                f"{account.password_env} must hold the {account.username} password, at least "
                f"{MIN_PASSWORD_CHARS} characters (e.g. `openssl rand -base64 24`)"
            )
        found[account.username] = value
    return found


def ensure_resources(client: MlflowClient) -> dict[str, str]:
    """The experiments and registered models memoria uses, created by the admin if missing; experiment ids."""
    ids = {}
    for name in (*TASKS, ALIAS_HISTORY_EXPERIMENT):
        experiment = client.get_experiment_by_name(name)
        # No artifact location: the server chooses (`mlflow-artifacts:/…`, stored behind it), as memoria does.
        ids[name] = experiment.experiment_id if experiment else client.create_experiment(name)
    models = {task: f"memoria {task} model bundles (ONNX + tokenizer)" for task in TASKS}
    models |= {lock: "memoria's promotion lock: each version is one gate's ticket. Not a model" for lock in LOCKS}
    for name, description in models.items():
        try:
            client.get_registered_model(name)
        except MlflowException as e:
            if e.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            client.create_registered_model(name, description=description)
    return ids


def ensure_user(auth: AuthServiceClient, username: str, password: str) -> None:
    try:
        auth.create_user(username, password)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.update_user_password(username, password)  # a re-run sets the password it was given


def ensure_grant(auth: AuthServiceClient, username: str, resource_type: str, resource_id: str, level: str) -> None:
    """Exactly `level` (replacing an earlier grant of another level)."""
    try:
        auth.grant_user_permission(username, resource_type, resource_id, level)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        auth.revoke_user_permission(username, resource_type, resource_id)
        auth.grant_user_permission(username, resource_type, resource_id, level)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="scripts/registry_accounts.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--uri", required=True, help="the tracking server, https://HOST:PORT")
    args = parser.parse_args(argv)
    if not args.uri.startswith("https://"):
        raise SystemExit(f"--uri {args.uri}: an https:// address (passwords must not cross the network in clear)")
    secrets = passwords(dict(os.environ))
    ids = ensure_resources(MlflowClient(tracking_uri=args.uri))
    auth = AuthServiceClient(args.uri)
    for account in ACCOUNTS:
        ensure_user(auth, account.username, secrets[account.username])
        for grant in account.grants:
            resource_id = ids[grant.name] if grant.resource_type == EXPERIMENT else grant.name
            ensure_grant(auth, account.username, grant.resource_type, resource_id, grant.permission)
        print(f"{account.username}: " + ", ".join(f"{g.permission} {g.resource_type} {g.name}" for g in account.grants))


if __name__ == "__main__":
    main()

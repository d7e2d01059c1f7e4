"""People's entrance to Prefect: nginx with a login per person and an allowlist of what they may do.

The Prefect server has one API auth string, which only the worker and the operator hold; nginx
checks a person's own login and the allowlist, then sends that auth string upstream, so people
never hold it. ``proxy_config_text`` is also rendered into ``infra/`` for the compose file (a test
keeps the two equal).
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from retrain.domain import tags
from retrain.stack.config import StackConfig, StackError
from retrain.stack.packages import apt_install
from retrain.stack.secrets import StackSecrets, write_private

# What people may do through the Prefect proxy: "METHOD /api/path" against these regexes, first
# match wins (nginx ``map``); run-input names come from retrain.domain.tags (plain [a-z-], no regex
# escaping needed). Refusals come first: Secret blocks and variables (values), the rest
# of the admin API, run inputs other than a gate's form schema/description and Retrain's receipts (a
# reviewer's answer is theirs). Then every other read (GET, and the POST filters/counts the UI
# reads with), a custom run of a deployment and resuming a paused run. Nothing else: no creating or
# changing deployments, work pools, blocks, variables, automations, flow runs' states or logs.
UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
PEOPLE_ALLOWLIST: tuple[tuple[str, bool], ...] = (
    ("^GET /api/admin/(version|settings)$", True),  # the UI reads both; settings come with secrets masked
    (f"^GET /api/flow_runs/{UUID}/input/[^/]+-(schema|description)$", True),
    (f"^GET /api/flow_runs/{UUID}/input/{tags.INPUT_RECEIPT_PREFIX}[^/]+$", True),
    # what a reviewer signs (run, model, challenger version, training key): nothing secret
    (f"^GET /api/flow_runs/{UUID}/input/{tags.INPUT_APPROVAL_SUBJECT}$", True),
    (f"^GET /api/flow_runs/{UUID}/input/{tags.INPUT_PENDING_REVIEW}$", True),  # `retrain pending`
    ("^[A-Z]+ /api/(admin|variables|block_documents)(/|$)", False),
    ("^[A-Z]+ /api/.*block_documents", False),
    ("^[A-Z]+ /api/flow_runs/[^/]+/input(/|$)", False),
    ("^(GET|HEAD) /api/", True),
    (
        "^POST /api/(artifacts|artifacts/latest|automations|deployments|flow_runs|flows|logs|task_runs|events"
        "|work_pools|work_queues|saved_searches|task_workers|concurrency_limits|v2/concurrency_limits"
        "|block_types|block_schemas)/(filter|count|paginate|history|lateness)$",
        True,
    ),
    ("^POST /api/events/count-by/[a-z_]+$", True),
    ("^POST /api/work_pools/[^/]+/(queues|workers)/filter$", True),
    (
        "^POST /api/ui/(flow_runs/count-task-runs|flow_runs/history|flows/count-deployments|flows/next-runs"
        "|schemas/validate|task_runs/count|task_runs/dashboard/counts)$",
        True,
    ),
    (f"^POST /api/deployments/{UUID}/create_flow_run$", True),
    (f"^POST /api/flow_runs/{UUID}/resume$", True),
)


def _nginx_os_user() -> tuple[str, tuple[int, int]] | None:
    """As root, nginx's workers run as ``www-data`` (or ``nobody``), never as root."""
    if os.geteuid() != 0:
        return None
    import grp
    import pwd

    for user in ("www-data", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(user)
            return f"{user} {grp.getgrgid(entry.pw_gid).gr_name}", (entry.pw_uid, entry.pw_gid)
    raise StackError("running as root, and no www-data or nobody OS user for nginx's workers")


def proxy_config_text(
    listen: str, upstream: str, server_auth: str, people_map: str, state: str, user: str | None = None
) -> str:
    """nginx's whole config for people's entrance (also rendered into infra/ for the compose file).

    ``people_map`` is a file of ``"Basic BASE64(NAME:PASSWORD)" NAME;`` lines: a login is checked
    against it (nginx's auth_basic would answer with a ``WWW-Authenticate`` challenge, which makes a
    browser hold the Prefect UI's own login request), and the access log names the person.
    ``server_auth`` is base64 of the Prefect server's auth string, sent upstream in place of the
    person's own login once nginx has checked that login and the allowlist."""
    rules = "\n".join(f'        "~{pattern}" {int(allowed)};' for pattern, allowed in PEOPLE_ALLOWLIST)
    temp = "\n".join(
        f"    {kind}_temp_path {state}/tmp_{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    return f"""# retrain/stack/proxy.py proxy_config_text: people's entrance to the Prefect API and UI.
{f"user {user};" if user else ""}
worker_processes 1;
pid {state}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 256; }}
http {{
    log_format people '$remote_addr $person [$time_local] "$request" $status';
    access_log {state}/access.log people;
{temp}
    map_hash_bucket_size 256;  # a key is a whole "Basic BASE64(NAME:PASSWORD)" header
    map $http_authorization $person {{
        default "";
        include {people_map};
    }}
    map "$request_method $uri" $people_may {{
        default 0;
{rules}
    }}
    server {{
        listen {listen};
        client_max_body_size 10m;
        proxy_http_version 1.1;
        location /api/ {{
            default_type application/json;
            if ($person = "") {{ return 401 '{{"exception_message": "Unauthorized"}}'; }}
            if ($people_may = 0) {{ return 403 '{{"detail": "not allowed for people on the team stack"}}'; }}
            proxy_set_header Authorization "Basic {server_auth}";
            proxy_pass {upstream};
        }}
        location = /api/health {{
            proxy_set_header Authorization "";
            proxy_pass {upstream};
        }}
        location / {{  # the UI's static files and /ui-settings: no secret in them
            limit_except GET {{ deny all; }}
            proxy_set_header Authorization "";
            proxy_pass {upstream};
        }}
    }}
}}
"""


def _people_map_line(name: str, password: str) -> str:
    login = base64.b64encode(f"{name}:{password}".encode()).decode()
    return f'"Basic {login}" "{name}";'


def write_proxy_config(config: StackConfig, keys: StackSecrets) -> Path:
    """nginx's config for people's Prefect entrance: its own pid, logs and temp paths under the
    state dir, one login per person, the allowlist, the server's auth string upstream.

    Both files are 0600: the master process reads them (as their owner) when it starts; its
    workers run as ``www-data`` when the stack runs as root."""
    directory = config.nginx_dir
    directory.mkdir(parents=True, exist_ok=True)
    workers = _nginx_os_user()
    people_map = directory / "people.map"
    entries = [_people_map_line(name, keys.person_password(name)) for name in sorted(keys.mlflow_people)]
    write_private(people_map, "\n".join(entries) + "\n")
    text = proxy_config_text(
        listen=f"{config.host}:{config.people_port}",
        upstream=f"http://{config.host}:{config.prefect_port}",
        server_auth=base64.b64encode(keys.prefect_auth.get_secret_value().encode()).decode(),
        people_map=str(people_map),
        state=str(directory),
        user=workers[0] if workers else None,
    )
    path = directory / "nginx.conf"
    write_private(path, text)
    return path


def ensure_nginx(on_event: Callable[[str], None]) -> None:
    """Debian's nginx, installed with apt-get when missing (as the browser test installs chromium)."""
    if shutil.which("nginx") or Path("/usr/sbin/nginx").exists():
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        raise StackError("nginx is not installed (the people's Prefect proxy needs it): apt-get install nginx-light")
    on_event("installing nginx (apt-get install nginx-light)")
    done = apt_install("nginx-light")
    if done.returncode != 0:
        raise StackError(f"apt-get install nginx-light failed: {done.stderr.strip()[-500:]}")

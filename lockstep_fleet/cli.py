"""``bin/fleet``: the command line of the local test fleet (see docs/fleet.md)."""

import argparse
import json
import os
import sys

from . import render, traffic
from .core import Fleet, FleetError

ROW = "{:<4} {:<18} {:<24} {:<13} {:<8} {:<8} {}"


def _print_status(st):
    if not st["up"]:
        print("no fleet is up")
        return
    print(ROW.format("host", "ssh", "service", "sshd", "svc pid", "version", "srv"))
    for h in st["hosts"]:
        print(ROW.format(
            h["name"], h["ssh"], h["service_url"], h["sshd"], h["service_pid"] or "-", h["version"] or "-",
            h["srv"]))
    hp, ex = st["haproxy"], st["exchange"]
    print("haproxy: {} (pid {}, {}), socket {}, check {}".format(
        hp["frontend"], hp["pid"], "up" if hp["alive"] else "DOWN", hp["socket"], hp.get("health_check", "-")))
    print("exchange: {} (pid {}, {})".format(ex["url"], ex["pid"], "up" if ex["alive"] else "DOWN"))


def main(argv=None, repo_root=None):
    ap = argparse.ArgumentParser(prog="bin/fleet", description="lockstep's local test fleet")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("up", help="bring up a fresh fleet (an existing one is brought down first)")
    p.add_argument("--hosts", type=int, default=8, help=f"number of hosts, 1..{render.MAX_HOSTS} (default 8)")
    p.add_argument("--version", help="install and start this release on every host")
    p.add_argument("--artifacts", help="directory holding order-router-V.{tar.gz,manifest.json} (default artifacts/)")
    p.add_argument("--no-lb-checks", action="store_true", help="HAProxy servers without health checks ('no check')")
    p.add_argument("--health-path", default=render.HEALTH_PATH, metavar="PATH",
                   help="the path HAProxy checks on every server, GET answered 200 (default /health); '' for a "
                        "service without a health endpoint: HAProxy then checks a TCP connect to its port. Kept in "
                        "the fleet's state for everything later (HAProxy's configuration, waits for health)")
    p.add_argument("--login-user", help="SSH login of every host instead of root: a user made on this machine if "
                                        "missing, with sudo (Debian's sudo package); the inventory logs in as it")
    p.add_argument("--sudo-password", help="with --login-user: sudo asks for this password (default: no password)")
    p.add_argument("--service-user", help="the service runs as this unprivileged user (made if missing)")
    sub.add_parser("down", help="stop everything and remove .fleet/ and the inventory")
    p = sub.add_parser("status", help="show hosts, sshd, service, HAProxy and exchange")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("exec", help="run a command inside a host: exec HOST -- CMD...")
    p.add_argument("host")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    p = sub.add_parser("sshd", help="stop|start|freeze|thaw one host's sshd")
    p.add_argument("host")
    p.add_argument("action", choices=["stop", "start", "freeze", "thaw"])
    p = sub.add_parser("traffic", help="POST /orders through HAProxy at a fixed rate")
    p.add_argument("--rate", type=float, required=True, help=f"orders per second (max {traffic.MAX_RATE})")
    p.add_argument("--seconds", type=float, required=True, help=f"duration (max {traffic.MAX_SECONDS})")
    p.add_argument("--flag", help="flag to set on every order")
    p.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    root = repo_root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    fleet = Fleet(root, artifacts_dir=getattr(args, "artifacts", None))
    try:
        if args.command == "up":
            if not 1 <= args.hosts <= render.MAX_HOSTS:
                ap.error(f"--hosts must be between 1 and {render.MAX_HOSTS}")
            if args.sudo_password and not args.login_user:
                ap.error("--sudo-password needs --login-user")
            try:
                render.health_check(args.health_path)
            except ValueError as exc:
                ap.error(str(exc))
            state = fleet.up(hosts=args.hosts, version=args.version, lb_checks=not args.no_lb_checks,
                             login_user=args.login_user, sudo_password=args.sudo_password,
                             service_user=args.service_user, health_path=args.health_path)
            print("fleet up: {} hosts in {:.2f}s{}; inventory {}".format(
                len(state["hosts"]), state["up_seconds"],
                f", release {args.version} running" if args.version else "", fleet.inventory))
        elif args.command == "down":
            fleet.down()
            print("fleet down")
        elif args.command == "status":
            st = fleet.status()
            print(json.dumps(st, indent=2)) if args.json else _print_status(st)
        elif args.command == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                ap.error("exec needs a command: exec HOST -- CMD...")
            argv = fleet.exec_argv(args.host, cmd)
            os.chdir("/")
            os.environ["HOME"] = "/root"
            os.execvp(argv[0], argv)
        elif args.command == "sshd":
            fleet.sshd(args.host, args.action)
            print("{}: sshd {}".format(args.host, {"stop": "stopped", "start": "started", "freeze": "frozen",
                                                "thaw": "thawed"}[args.action]))
        elif args.command == "traffic":
            try:
                traffic.check_bounds(args.rate, args.seconds)
            except ValueError as exc:
                ap.error(str(exc))
            result = fleet.traffic(args.rate, args.seconds, flag=args.flag)
            if args.json:
                print(json.dumps(result, indent=2))
            else:
                lat = result["latency_ms"]
                print("sent {}, succeeded {}, failed {}; latency p50 {} ms, p99 {} ms; versions {}".format(
                    result["sent"], result["succeeded"], result["failed"], lat["p50"], lat["p99"],
                    result["versions"]))
    except FleetError as exc:
        print(f"bin/fleet: {exc}", file=sys.stderr)
        return 1
    return 0

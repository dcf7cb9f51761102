"""``persam app``: load the model once and serve the web page and HTTP API on this machine."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from ..errors import PersamError

EXIT_OK, EXIT_ERROR = 0, 2


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def cmd_app(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Check the options, load one model for every request, then serve until Ctrl-C."""
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.max_upload_mb < 1:
        parser.error("--max-upload-mb must be at least 1")
    try:
        import uvicorn

        from ..app import AppConfig, create_app
    except ImportError as exc:
        raise PersamError(f"the app needs fastapi, uvicorn and python-multipart ({exc}); "
                          "pip install fastapi uvicorn python-multipart") from exc
    import torch

    from ..loading import DEFAULT_MODEL, load_sam, tune_cpu_allocator

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.device in ("cpu", None):
        tune_cpu_allocator()
    print(f"persam: loading {args.model or DEFAULT_MODEL} ...", file=sys.stderr)
    sam = load_sam(args.model or DEFAULT_MODEL, args.checkpoint, device=args.device, progress=not args.quiet)
    try:
        from ..loading import use_runtime

        use_runtime(sam, args.runtime, args.precision)  # the image encoder on OpenVINO when installed (auto)
    except PersamError as exc:
        print(f"persam: warning: {exc}; running the encoder with PyTorch", file=sys.stderr)
    local = _is_local(args.host)
    hosts = ("127.0.0.1", "localhost", "::1") if local else ("*",)
    config = AppConfig(max_upload_bytes=args.max_upload_mb * 1024 * 1024, allowed_hosts=hosts)
    app = create_app(sam, config)
    shown = "localhost" if args.host in ("127.0.0.1", "localhost") else args.host
    if ":" in shown:
        shown = f"[{shown}]"
    print(f"persam: open http://{shown}:{args.port}/ in your browser (API docs: /docs); Ctrl-C stops", flush=True)
    if not local:
        print(f"persam: warning: listening on {args.host}: anyone who can reach this port can use the app",
              file=sys.stderr)
    server = uvicorn.Server(uvicorn.Config(app, host=args.host, port=args.port, log_level="warning",
                                           timeout_graceful_shutdown=5))
    try:
        server.run()
    except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled, after a clean shutdown
        pass
    except SystemExit:  # uvicorn exits when it cannot bind
        server.started = False
    if not server.started:
        raise PersamError(f"could not listen on {args.host}:{args.port} (is the port in use? try --port)")
    print("persam: stopped", file=sys.stderr)
    return EXIT_OK

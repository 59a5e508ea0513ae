"""Start a command that serves the web demo, wait until the URL it prints answers, stop it afterwards."""
import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(args, cwd: str, env: dict, log_path: str, timeout: float = 180):
    """Run ``args`` (its output to ``log_path``); yield the URL of its "Running on local URL" line once that
    URL answers; stop the command (and its children) at the end."""
    with open(log_path, 'w') as log:
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + timeout
        while True:
            with open(log_path) as f:
                text = f.read()
            found = re.search(r'Running on local URL:\s+(\S+)', text)
            if found:
                with contextlib.suppress(OSError):
                    urllib.request.urlopen(found.group(1), timeout=2).read(1)
                    break
            if proc.poll() is not None or time.time() > deadline:
                raise AssertionError(f'the demo did not start:\n{text[-3000:]}')
            time.sleep(0.5)
        yield found.group(1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # the group of the process started here: a shell and its python
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

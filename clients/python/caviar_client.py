"""A client of caviar's ask/tell API, for training programs written in Python.

Standard library only (urllib, json): copy this file next to your program or put its directory
on PYTHONPATH. It speaks the HTTP API of caviard (schemas/api.md, "Ask/tell"): a job whose
trainer is "ask" hands its trials to whoever asks; the program trains each trial with its
parameters, reports every epoch (the job's pruner may answer stop) and tells the result:

    import caviar_client
    client = caviar_client.Client("http://127.0.0.1:8470", token=None)
    for trial in client.trials(job_id):          # asks until the job is done
        for epoch in range(1, trial.epochs + 1):
            ...                                  # train one epoch with trial.params
            if not trial.report(epoch, dev_error=e, dev_cost=c):
                break                            # pruned: stop training
        trial.tell(dev_error=best_e, dev_cost=best_c)   # or trial.fail("reason")

A program that a caviar worker runs as an external trainer (caviar-worker --trainer NAME=COMMAND)
reads its parameters and prints its metrics instead:

    params = caviar_client.trainer_params()      # reads CAVIAR_PARAMS_FILE
    caviar_client.print_epoch(epoch, dev_error=e, dev_cost=c)   # the "caviar:" line, flushed

Every refusal of the server raises caviar_client.Error with its status and message; a trial
whose lease was lost (its client was silent for lease_seconds) is refused with status 409.
"""

import json
import math
import os
import sys
import time
import urllib.error
import urllib.request

__all__ = ["Client", "Trial", "Error", "trainer_params", "print_epoch", "print_final"]

METRICS = ("dev_error", "dev_cost", "train_error", "train_cost", "learning_rate")


class Error(Exception):
    """A request the server refused (status is its HTTP status, message its reason), or one
    that could not reach it (status None)."""

    def __init__(self, message, status=None):
        super().__init__(f"{message} (HTTP {status})" if status else message)
        self.status = status
        self.message = message


class Trial:
    """One trial leased to this client. Attributes: id, number, job_id, params (a dict of every
    parameter: the job's fixed ones, the sampled ones and seed), epochs (how many it trains at
    most), lease (the token every report and tell carries), lease_seconds (how long the lease
    lasts without a report), stopped (True once the pruner said stop)."""

    def __init__(self, client, reply):
        self.client = client
        self.id = reply["id"]
        self.number = reply["number"]
        self.job_id = reply["job_id"]
        self.params = reply["params"]
        self.epochs = reply["epochs"]
        self.lease = reply["lease"]
        self.lease_seconds = reply["lease_seconds"]
        self.stopped = False

    def __repr__(self):
        return f"Trial(id={self.id}, number={self.number}, params={self.params!r})"

    def report(self, epoch, dev_error, dev_cost, **metrics):
        """Reports one epoch's metrics (epoch counts from 1; metrics may add train_error,
        train_cost and learning_rate) and renews the lease. Returns True to go on training,
        False when the job's pruner stopped the trial: then train no further and tell the
        result."""
        body = _metrics(dev_error=dev_error, dev_cost=dev_cost, **metrics)
        body.update(lease=self.lease, epoch=int(epoch))
        reply = self.client.request("POST", f"/v1/trials/{self.id}/report", body)
        self.lease_seconds = reply.get("lease_seconds", self.lease_seconds)
        if reply["decision"] == "stop":
            self.stopped = True
        return not self.stopped

    def tell(self, dev_error, dev_cost, epoch=None, **metrics):
        """Tells the trial's result: the metrics of its best epoch (epoch: which one; by default
        the best one reported). A trial the pruner stopped is stored pruned. Returns the stored
        trial (a dict, as GET /v1/trials/{id} gives it), once it is committed."""
        body = _metrics(dev_error=dev_error, dev_cost=dev_cost, **metrics)
        body.update(lease=self.lease, status="completed")
        if epoch is not None:
            body["epoch"] = int(epoch)
        return self.client.request("POST", f"/v1/trials/{self.id}/tell", body, resend=False)

    def fail(self, reason):
        """Tells that the trial failed, for reason (a non-empty string). Returns the stored
        trial."""
        return self.client.request("POST", f"/v1/trials/{self.id}/tell",
                                   {"lease": self.lease, "status": "failed",
                                    "error": str(reason)}, resend=False)


class Client:
    """A connection to caviard's API at url ("http://host:port"). token: the API token, sent as
    "Authorization: Bearer <token>" (default: $CAVIAR_TOKEN, else none). name: this client's
    name, recorded with each trial it trains (1 to 64 printable characters). timeout: seconds
    one request may take. retry_seconds: how long a request that cannot reach the server (it
    restarts, say) is tried again before Error is raised."""

    def __init__(self, url, token=None, name=None, timeout=60, retry_seconds=30):
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("CAVIAR_TOKEN") or None
        self.name = name
        self.timeout = timeout
        self.retry_seconds = retry_seconds

    def request(self, method, path, body=None, resend=True):
        """Sends one request and returns its JSON answer; raises Error for an error status (with
        the server's message) or when the server cannot be reached for retry_seconds. A request
        whose connection was refused is sent again; one whose connection broke after it was sent
        only with resend (the server may have applied it: a tell resent would be refused as
        stale after its result was stored)."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.1
        while True:
            req = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return json.loads(r.read() or b"null")
            except urllib.error.HTTPError as e:
                raw = e.read()
                try:
                    message = json.loads(raw)["error"]
                except (ValueError, KeyError, TypeError):
                    message = raw.decode("utf-8", "replace")[:200] or e.reason
                raise Error(message, e.code) from None
            except (urllib.error.URLError, ConnectionError) as e:
                reason = getattr(e, "reason", e)
                if not resend and not isinstance(reason, ConnectionRefusedError):
                    raise Error(f"{method} {self.url}{path}: the connection broke ({reason}); "
                                "the server may have stored it: look at the trial") from None
                if time.monotonic() + delay > deadline:
                    raise Error(f"{method} {self.url}{path}: cannot reach caviard: {reason}") \
                        from None
                time.sleep(delay)
                delay = min(2 * delay, 2.0)

    def ask(self, job_id):
        """Asks once for a trial of job job_id. Returns (trial, done, retry_after): a Trial, or
        None with done True when the job will never have another one, else False with the
        seconds to wait before asking again."""
        reply = self.request("POST", f"/v1/jobs/{int(job_id)}/ask",
                             {"client": self.name} if self.name else {})
        if reply.get("trial"):
            return Trial(self, reply["trial"]), False, 0
        return None, bool(reply.get("done")), float(reply.get("retry_after", 1))

    def trials(self, job_id):
        """Yields the trials of job job_id one at a time until the job is done, asking again
        after the server's retry_after while it has none to hand out (its other trials are out
        with other clients). Tell (or fail) each trial before asking for the next one."""
        while True:
            trial, done, retry_after = self.ask(job_id)
            if trial is not None:
                yield trial
            elif done:
                return
            else:
                time.sleep(retry_after)


def _metrics(**values):
    """The metrics of a report or a tell as JSON numbers; refuses unknown names."""
    out = {}
    for name, value in values.items():
        if name not in METRICS:
            raise ValueError(f"{name}: not a metric caviar takes (one of {', '.join(METRICS)})")
        if value is not None:
            out[name] = float(value)
    return out


def trainer_params(path=None):
    """The parameters of the trial a caviar worker runs this program for: the JSON object in
    path, by default the file $CAVIAR_PARAMS_FILE names (every parameter: fixed, sampled and
    seed). Raises Error when there is none."""
    path = path or os.environ.get("CAVIAR_PARAMS_FILE")
    if not path:
        raise Error("CAVIAR_PARAMS_FILE is not set: this program was not started by a caviar "
                    "worker")
    with open(path, encoding="utf-8") as f:
        params = json.load(f)
    if not isinstance(params, dict):
        raise Error(f"{path}: the parameters must be a JSON object")
    return params


def _line(words, metrics):
    for name, value in metrics.items():
        if name not in METRICS:
            raise ValueError(f"{name}: not a metric caviar takes (one of {', '.join(METRICS)})")
        if value is None:
            continue
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{name}: must be a finite number, got {value}")
        words.append(f"{name}={value!r}")
    return "caviar: " + " ".join(words)


def print_epoch(epoch, file=None, **metrics):
    """Prints one epoch's metrics as the line a caviar worker reads from an external trainer,
    "caviar: epoch=3 dev_error=0.12 dev_cost=0.31", and flushes it at once. metrics: dev_error,
    dev_cost (at least one), train_error, train_cost, learning_rate. file: default stdout."""
    if not any(metrics.get(k) is not None for k in ("dev_error", "dev_cost")):
        raise ValueError("an epoch needs dev_error or dev_cost")
    out = file or sys.stdout
    print(_line([f"epoch={int(epoch)}"], metrics), file=out, flush=True)


def print_final(file=None, **metrics):
    """Prints the trial's final metrics, "caviar: final dev_error=... dev_cost=...", which
    override the best reported epoch's as its result; flushed at once."""
    out = file or sys.stdout
    print(_line(["final"], metrics), file=out, flush=True)

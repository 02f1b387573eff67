"""Where notifications go: signed JSON webhooks, Slack incoming webhooks, email over SMTP.

Delivery runs in the evaluator's thread, never in a request or the writer. Webhooks and Slack are
retried with backoff on connection errors, timeouts, 429 and 5xx (a 4xx other than 429 is the
receiver refusing this message: sending it again would not help). Each attempt sends the same
bytes, so the same signature: a receiver may deduplicate on it.
"""

from __future__ import annotations

import hashlib
import hmac
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlparse

import httpx
import msgspec

from inferwatch.alerts.rules import Channel, Email, Slack, Webhook

SIGNATURE_HEADER = "X-Inferwatch-Signature"
EVENT_HEADER = "X-Inferwatch-Event"
ATTEMPTS = 4
BACKOFF_S = 0.5  # then 1 s, 2 s
TIMEOUT_S = 10.0


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, body), what a receiver recomputes to trust the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Smtp:
    """The server's mail relay, from `--smtp-url smtp://[user:pass@]host[:port][?starttls=1]` (or
    `smtps://` for TLS from the start) and `--smtp-from`."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    tls: bool = False
    starttls: bool = False

    @classmethod
    def from_url(cls, url: str, sender: str) -> Smtp:
        parsed = urlparse(url)
        if parsed.scheme not in ("smtp", "smtps") or not parsed.hostname:
            raise ValueError(f"SMTP URL {url!r}: expected smtp://host:port or smtps://host:port")
        tls = parsed.scheme == "smtps"
        return cls(parsed.hostname, parsed.port or (465 if tls else 25), sender,
                   unquote(parsed.username) if parsed.username else None,
                   unquote(parsed.password) if parsed.password else None,
                   tls, "starttls=1" in parsed.query or "starttls=true" in parsed.query)


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """POSTs with retries; the outcome as recorded in the event's history."""
    error = ""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            reply = client.post(url, content=body, headers=headers)
            if reply.status_code < 300:
                return {"ok": True, "attempts": attempt, "status": reply.status_code}
            error = f"HTTP {reply.status_code}"
            if reply.status_code < 500 and reply.status_code != 429:
                return {"ok": False, "attempts": attempt, "error": error}
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
        if attempt < ATTEMPTS:
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    return {"ok": False, "attempts": ATTEMPTS, "error": error}


def slack_text(event: dict[str, Any]) -> str:
    rule = event["rule"]
    icon = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "ok": ":large_green_circle:"}
    value = "no data" if event["value"] is None else f"{event['value']:.4g}"
    verb = "recovered" if event["kind"] == "recovered" else f"is {event['state'].upper()}"
    return (f"{icon.get(event['state'], '')} *{rule['name']}* {verb} ({event['workspace']}): {rule['metric']} = "
            f"{value}, {rule['condition']} warning {rule['warning']} / critical {rule['critical']}"
            f" over {rule['window_s']} s")


def deliver(channel: Channel, event: dict[str, Any], smtp: Smtp | None, client: httpx.Client) -> dict[str, Any]:
    """Sends one event to one channel; never raises (the outcome says what happened)."""
    body = msgspec.json.encode(event)
    try:
        if isinstance(channel, Webhook):
            headers = {"Content-Type": "application/json", EVENT_HEADER: event["kind"]}
            if channel.secret:
                headers[SIGNATURE_HEADER] = signature(channel.secret, body)
            return {"type": "webhook", **_post(client, channel.url, body, headers)}
        if isinstance(channel, Slack):
            text = msgspec.json.encode({"text": slack_text(event)})
            return {"type": "slack", **_post(client, channel.url, text, {"Content-Type": "application/json"})}
        if isinstance(channel, Email):
            if smtp is None:
                return {"type": "email", "ok": False, "error": "no SMTP server configured (--smtp-url)"}
            _mail(smtp, channel.to, event, body)
            return {"type": "email", "ok": True, "to": channel.to}
    except (OSError, smtplib.SMTPException) as exc:
        return {"type": type(channel).__name__.lower(), "ok": False, "error": f"{type(exc).__name__}: {exc}"}
    raise AssertionError(f"unknown channel {channel!r}")


def _mail(smtp: Smtp, to: list[str], event: dict[str, Any], body: bytes) -> None:
    message = EmailMessage()
    rule = event["rule"]
    state = "recovered" if event["kind"] == "recovered" else event["state"].upper()
    message["Subject"] = f"[inferwatch] {state}: {rule['name']}"
    message["From"] = smtp.sender
    message["To"] = ", ".join(to)
    message.set_content(slack_text(event).replace("*", "") + "\n\n" + body.decode())
    context = ssl.create_default_context()
    server: smtplib.SMTP = (smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT_S, context=context) if smtp.tls
                            else smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S))
    with server:
        if smtp.starttls:
            server.starttls(context=context)
        if smtp.username:
            server.login(smtp.username, smtp.password or "")
        server.send_message(message)

#!/usr/bin/env python3
"""Post a vigil alert to a Slack channel through an incoming webhook.

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. The
webhook URL comes from the Secret key slack_webhook_url (env
SLACK_WEBHOOK_URL); SLACK_* parameters tune the message and the retries.
The message is Block Kit `blocks` with a top-level `text` fallback. A 429
waits for its Retry-After, a 5xx or a network error is retried with capped
exponential backoff, anything else fails at once. See README.md.
"""

import json
import re

import vigil
from vigil import notify

NAME = "slack"
# The parameters the retry policy reads: tries after the first, first
# backoff, time budget, timeout of one request.
SETTINGS = ("SLACK_RETRIES", "SLACK_RETRY_BASE", "SLACK_TIME_BUDGET", "SLACK_HTTP_TIMEOUT")

# Slack's limits (docs.slack.dev/reference/block-kit): header text 150,
# section text 3000, a section field 2000 and at most 10 fields, a context
# block at most 10 elements; a message's text is cut at 40,000.
HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
FIELDS_MAX = 10
TEXT_MAX = 3000
EVENTS_SHOWN = 5


def escape(s):
    return notify.text(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def md(s, limit):
    """Slack mrkdwn: &, < and > escaped, then cut to limit characters."""
    s = escape(s)
    if len(s) <= limit:
        return s
    return re.sub(r"&[a-z]{0,3}$", "", s[:limit - 1]) + "\u2026"


def field(title, value):
    return {"type": "mrkdwn", "text": md("*%s*\n%s" % (title, value), FIELD_MAX)}


def build(view, env):
    a = view.alert
    fields = [field("Level", view.level), field("Object", view.obj),
              field("Status", "resolved" if view.resolved else (view.reason or "raised"))]
    if view.counts:
        fields.append(field("Events", view.counts))
    if a.threshold is not None:
        fields.append(field("Threshold", notify.text(a.threshold)))
    if a.throttle_count:
        fields.append(field("Throttled", notify.text(a.throttle_count)))
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": notify.clip(view.title(), HEADER_MAX),
                                    "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": md(view.summary(), SECTION_MAX)}},
        {"type": "section", "fields": fields[:FIELDS_MAX]},
    ]
    if view.events:
        lines = []
        for ev in view.events[:EVENTS_SHOWN]:
            line = "\u2022 *%s* %s at %s" % (notify.text(ev.event_id) or "event", notify.text(ev.obj_name),
                                             notify.iso(ev.report_timestamp))
            if ev.event_details:
                line += "\n    " + notify.clip(ev.event_details, 300)
            lines.append(line)
        if len(view.events) > EVENTS_SHOWN:
            lines.append("\u2026and %d more" % (len(view.events) - EVENTS_SHOWN))
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": md("\n".join(lines), SECTION_MAX)}})
    context = "vigil"
    if view.name:
        context += " \u00b7 alert %s" % view.name
    if env.get("VIGIL_EXECUTION_ID"):
        context += " \u00b7 execution %s" % env["VIGIL_EXECUTION_ID"]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": md(context, SECTION_MAX)}]})
    msg = {"text": notify.clip(view.summary(), TEXT_MAX), "blocks": blocks}
    for key, env_name in (("username", "SLACK_USERNAME"), ("icon_emoji", "SLACK_ICON_EMOJI"),
                          ("channel", "SLACK_CHANNEL")):
        value = notify.param(env_name)
        if value:
            msg[key] = notify.clip(value, 80)
    return msg


def run():
    policy = notify.Policy(NAME, SETTINGS)
    url = notify.secret("slack_webhook_url")
    host = notify.check_url(url, "slack_webhook_url")
    view = notify.View(notify.alert())
    body = json.dumps(build(view, vigil.env()), ensure_ascii=False).encode("utf-8")
    label = "POST to %s" % host

    def post():
        return notify.call(policy, "POST", url, label, body, {"Content-Type": "application/json; charset=utf-8"})

    status, _, answer = policy.run("send to Slack", post)
    print("%s: sent %r to %s (HTTP %d %s)" % (NAME, notify.clip(view.summary(), 120), host, status,
                                              notify.excerpt(answer, 40)))
    return 0


if __name__ == "__main__":
    notify.main(NAME, run)

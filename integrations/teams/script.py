#!/usr/bin/env python3
"""Post a vigil alert to a Microsoft Teams channel or chat as an Adaptive Card.

Run by vigil as a ControlScript: `python3 script.py '<alert json>'`. The
webhook URL of a Teams Workflows flow ("When a Teams webhook request is
received") comes from the Secret key teams_webhook_url (env
TEAMS_WEBHOOK_URL). The body is a message with one Adaptive Card 1.5
attachment, kept under Teams' 28 KB message limit. A 429 waits for its
Retry-After, a 5xx or a network error is retried with capped exponential
backoff, anything else fails at once. See README.md.
"""

import json

import vigil
from vigil import notify

NAME = "teams"
# The parameters the retry policy reads: tries after the first, first
# backoff, time budget, timeout of one request.
SETTINGS = ("TEAMS_RETRIES", "TEAMS_RETRY_BASE", "TEAMS_TIME_BUDGET", "TEAMS_HTTP_TIMEOUT")

# Teams refuses a message over 28 KB; stay below with room to spare.
MAX_BYTES = 27 * 1024
# The card's text limits, tried in turn until the message fits:
# (characters per text, characters per event line, events shown).
SHRINK = ((2000, 600, 10), (1000, 200, 5), (300, 100, 2), (150, 0, 0))
# The title's color by level.
COLORS = {"HIGH": "attention", "MEDIUM": "warning", "LOW": "accent"}


def card(view, env, limit, line_limit, shown):
    a = view.alert
    color = "good" if view.resolved else COLORS.get(view.label, "default")
    facts = [("Level", view.level), ("Object", view.obj),
             ("Status", "resolved" if view.resolved else (view.reason or "raised"))]
    if view.counts:
        facts.append(("Events", view.counts))
    if a.threshold is not None:
        facts.append(("Threshold", notify.text(a.threshold)))
    if a.throttle_count:
        facts.append(("Throttled", notify.text(a.throttle_count)))
    if view.name:
        facts.append(("Alert", view.name))
    if env.get("VIGIL_EXECUTION_ID"):
        facts.append(("Execution", env["VIGIL_EXECUTION_ID"]))
    body = [
        {"type": "TextBlock", "text": notify.clip(view.title(), limit), "style": "heading", "size": "large",
         "weight": "bolder", "color": color, "wrap": True},
        {"type": "TextBlock", "text": notify.clip(view.summary(), limit), "wrap": True},
        {"type": "FactSet", "facts": [{"title": t, "value": notify.clip(v, limit)} for t, v in facts]},
    ]
    if view.events and shown:
        body.append({"type": "TextBlock", "text": "Events", "weight": "bolder", "spacing": "medium", "wrap": True})
        for ev in view.events[:shown]:
            line = "%s %s at %s" % (notify.text(ev.event_id) or "event", notify.text(ev.obj_name),
                                    notify.iso(ev.report_timestamp))
            if ev.event_details and line_limit:
                line += ": " + notify.text(ev.event_details)
            body.append({"type": "TextBlock", "text": notify.clip(line, max(line_limit, 150)), "wrap": True,
                         "isSubtle": True, "spacing": "small"})
        if len(view.events) > shown:
            body.append({"type": "TextBlock", "text": "\u2026and %d more" % (len(view.events) - shown),
                         "isSubtle": True, "wrap": True})
    return {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "fallbackText": notify.clip(view.summary(), limit),
        "body": body,
    }


def message(view, env):
    """The message, as UTF-8 JSON no larger than MAX_BYTES."""
    for limit, line_limit, shown in SHRINK:
        msg = {"type": "message", "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": None,
            "content": card(view, env, limit, line_limit, shown),
        }]}
        body = json.dumps(msg, ensure_ascii=False).encode("utf-8")
        if len(body) <= MAX_BYTES:
            return body
    raise notify.Failure("the card is %d bytes even cut down, over Teams' 28 KB limit" % len(body))


def run():
    policy = notify.Policy(NAME, SETTINGS)
    url = notify.secret("teams_webhook_url")
    host = notify.check_url(url, "teams_webhook_url")
    view = notify.View(notify.alert())
    body = message(view, vigil.env())
    label = "POST to %s" % host

    def post():
        status, headers, answer = notify.call(policy, "POST", url, label, body,
                                              {"Content-Type": "application/json; charset=utf-8"})
        # A connector answers 200 and reports its own throttling in the body.
        if b"HTTP error 429" in answer:
            raise notify.Retryable("%s: throttled: %s" % (label, notify.excerpt(answer)),
                                   notify.retry_after(headers))
        return status, answer

    status, answer = policy.run("send to Teams", post)
    print("%s: sent %r to %s (HTTP %d, %d bytes)" % (NAME, notify.clip(view.summary(), 120), host, status,
                                                     len(body)))
    return 0


if __name__ == "__main__":
    notify.main(NAME, run)

package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

const hookSecret = "It's a Secret to Everybody"

const receiverYAML = `kind: Secret
name: gh
spec:
  data:
    signing: "It's a Secret to Everybody"
---
kind: WebhookReceiver
name: gh
spec:
  format: github
  auth:
    type: hmac
    preset: github
    secret: {name: gh, key: signing}
`

// postHook posts a signed GitHub push delivery; it reports whether it got
// 202.
func postHook(c *http.Client, api, delivery string) bool {
	body := fmt.Sprintf(`{"ref": "refs/heads/main", "n": %q}`, delivery)
	mac := hmac.New(sha256.New, []byte(hookSecret))
	mac.Write([]byte(body))
	req, _ := http.NewRequest("POST", api+"/hooks/gh", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode == http.StatusAccepted
}

// deliveries counts the stored events of the receiver by delivery id.
func deliveries(t *testing.T, s *server, eventID string) map[string]int {
	t.Helper()
	return countEvents(t, s, eventID, "deliveryid")
}

// TestKillDuringWebhooks: kill -9 of vigil serve while clients post
// webhooks as fast as they can; after the restart every delivery that got
// 202 is an event, once, and the ones without an answer, sent again, are
// too.
func TestKillDuringWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test")
	}
	dir := t.TempDir()
	s := startServer(t, dir, nil)
	if _, errOut, code := s.CLI(t, receiverYAML, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	waitFor(t, "the receiver", 10*time.Second, func() bool { return postHook(http.DefaultClient, s.API, "warm-up") })
	const clients = 32
	var (
		mu      sync.Mutex
		sent    = map[string]bool{}
		acked   atomic.Int64
		killed  = make(chan struct{})
		stopAll atomic.Bool
		wg      sync.WaitGroup
		httpc   = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	)
	for c := range clients {
		wg.Go(func() {
			for i := 0; !stopAll.Load(); i++ {
				id := fmt.Sprintf("d-%d-%d", c, i)
				mu.Lock()
				sent[id] = false
				mu.Unlock()
				if !postHook(httpc, s.API, id) {
					return
				}
				mu.Lock()
				sent[id] = true
				mu.Unlock()
				if acked.Add(1) == 500 {
					close(killed)
				}
			}
		})
	}
	select {
	case <-killed:
	case <-time.After(60 * time.Second):
		t.Fatal("the webhooks did not reach 500 answers")
	}
	_ = s.Cmd.Process.Signal(syscall.SIGKILL)
	stopAll.Store(true)
	wg.Wait()
	<-s.Exited()

	s2 := startServer(t, dir, nil)
	stored := deliveries(t, s2, "GITHUB_PUSH")
	var unacked []string
	for id, ok := range sent {
		if ok && stored[id] != 1 {
			t.Fatalf("delivery %s got 202 but is stored %d times after the restart", id, stored[id])
		}
		if !ok {
			unacked = append(unacked, id)
		}
	}
	t.Logf("killed after %d deliveries answered 202; %d without an answer", acked.Load(), len(unacked))
	waitFor(t, "the receiver after the restart", 10*time.Second, func() bool { return postHook(http.DefaultClient, s2.API, "warm-up-2") })
	for _, id := range unacked {
		// A repeat of a delivery already stored answers 200; either is fine.
		if c := http.DefaultClient; !postHook(c, s2.API, id) && deliveries(t, s2, "GITHUB_PUSH")[id] != 1 {
			t.Fatalf("re-send of %s failed", id)
		}
	}
	stored = deliveries(t, s2, "GITHUB_PUSH")
	for id := range sent {
		if stored[id] != 1 {
			t.Fatalf("delivery %s stored %d times after the re-send", id, stored[id])
		}
	}
	term(t, s2)
}

// TestScheduleInServe: a schedule every second publishes its event from
// vigil serve, SCHEDULER_ACTION_SUCCESS follows, and `vigil get schedule`
// shows the last and the next run.
func TestScheduleInServe(t *testing.T) {
	s := startServer(t, t.TempDir(), nil)
	yaml := "kind: Schedule\nname: tick\nspec:\n  cron: \"@every 1s\"\n  publish_event: {event_id: TICK, obj_type: pool, obj_name: web}\n"
	if _, errOut, code := s.CLI(t, yaml, "apply", "-f", "-"); code != 0 {
		t.Fatal(errOut)
	}
	waitFor(t, "TICK and SCHEDULER_ACTION_SUCCESS", 15*time.Second, func() bool {
		return len(listAll(t, s, "TICK")) >= 2 && len(listAll(t, s, "SCHEDULER_ACTION_SUCCESS")) >= 2
	})
	out, errOut, code := s.CLI(t, "", "get", "schedule", "tick", "-o", "json")
	if code != 0 {
		t.Fatal(errOut)
	}
	var obj struct {
		Status struct {
			LastRun *struct {
				Status  string `json:"status"`
				EventID string `json:"event_id"`
			} `json:"last_run"`
			NextRun *time.Time `json:"next_run"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(out), &obj); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if obj.Status.LastRun == nil || obj.Status.LastRun.Status != "succeeded" || obj.Status.LastRun.EventID == "" ||
		obj.Status.NextRun == nil || obj.Status.NextRun.Before(time.Now().Add(-time.Second)) {
		t.Fatalf("status: %s", out)
	}
	// A bad cron expression is refused naming the field.
	_, errOut, code = s.CLI(t, "kind: Schedule\nname: bad\nspec:\n  cron: \"61 * * * *\"\n  publish_event: {event_id: TICK}\n", "apply", "-f", "-")
	if code == 0 || !strings.Contains(errOut, "spec.cron") {
		t.Fatalf("bad cron: %d %s", code, errOut)
	}
	term(t, s)
}

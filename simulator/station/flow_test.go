package station

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/vcan/isotp"
)

// orderLog records, in the order they happen, the KMS's requests and the ECU's LoadKey answers.
type orderLog struct {
	mu     sync.Mutex
	events []string
}

func (l *orderLog) add(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, fmt.Sprintf(format, a...))
}

// at returns the position of event, or -1.
func (l *orderLog) at(event string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Index(l.events, event)
}

// slotName names the slot of a request body: 1 for the master key, D for the supplier key,
// else the SecOC KeyID.
func slotName(body []byte) string {
	var req struct{ ProvisioningType, KeyID string }
	json.Unmarshal(body, &req)
	switch req.ProvisioningType {
	case "EcuMasterKey":
		return "1"
	case "SupplierSymmKey":
		return "D"
	}
	return req.KeyID
}

// recordKMS logs each request as "POST provisioning 4" when it arrives and "… answered" before
// its answer leaves (the answer is written when the handler returns). hold, when set, runs
// before the request is served.
func recordKMS(l *orderLog, hold func(event string)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			path := map[string]string{kms.PathProvisioning: "provisioning", kms.PathKeySync: "sync"}[req.URL.Path]
			event := req.Method + " " + path + " " + slotName(body)
			l.add("%s", event)
			if hold != nil {
				hold(event)
			}
			next.ServeHTTP(w, req)
			l.add("%s answered", event)
		})
	}
}

// answerLog is an ECU's transport that logs each LoadKey answer ("answer 4") before sending it.
type answerLog struct {
	isotp.Transport
	log *orderLog
}

func (a answerLog) Send(ctx context.Context, msg []byte) error {
	// 71 01 FD10, ERC, M4 (UID ‖ KeyID ‖ AuthID ‖ …), M5
	if bytes.HasPrefix(msg, []byte{0x71, 0x01, 0xFD, 0x10, 0x00}) && len(msg) == 53 {
		a.log.add("answer %X", msg[5+15]>>4)
	}
	return a.Transport.Send(ctx, msg)
}

// loggedECU starts one ECU on r's bus whose LoadKey answers go to l.
func loggedECU(t *testing.T, r *rig, l *orderLog) Target {
	t.Helper()
	et, err := ecu.Transport(ecu.HubDialer(r.hub), ecu.DefaultResponseID, ecu.DefaultRequestID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecu.New(ecu.Config{UID: baseUID}, answerLog{et, l})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go e.Serve(ctx)
	c, err := ecu.Dial(ecu.HubDialer(r.hub), ecu.DefaultRequestID, ecu.DefaultResponseID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); c.Close(); et.Close() })
	return Target{Name: "logged", Client: c}
}

// TestFlowOrder: the master key's PUT is answered before any other key is asked for; the other
// keys' POSTs are in flight at once; every PUT follows its key's LoadKey answer; every sync POST
// follows the answer to its key's injection report; Run returns after every report is answered.
func TestFlowOrder(t *testing.T) {
	var l orderLog
	others := []string{"D", "4", "5", "6", "7", "8", "9", "A", "B", "C"}
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	hold := func(event string) {
		if !strings.HasPrefix(event, "POST provisioning ") || event == "POST provisioning 1" {
			return
		}
		mu.Lock()
		if arrived++; arrived == len(others) {
			close(all)
		}
		mu.Unlock()
		select { // no answer until every other key's POST is in: they must be in flight together
		case <-all:
		case <-time.After(20 * time.Second):
			t.Errorf("%s: the other keys' POSTs did not all arrive while it waited", event)
		}
	}
	r := newRig(t, 0, ecu.Config{}, recordKMS(&l, hold))
	target := loggedECU(t, r, &l)
	sum := Run(context.Background(), r.config(t, "master,supplier,secoc:4-C", true), []Target{target})
	l.add("done")
	if !sum.OK() || sum.Totals.Keys[Injected] != 11 || sum.Totals.Syncs[Verified] != 11 {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
	masterPUT := l.at("PUT provisioning 1 answered")
	for _, s := range append([]string{"1"}, others...) {
		post, answer, put, putDone := l.at("POST provisioning "+s), l.at("answer "+s), l.at("PUT provisioning "+s), l.at("PUT provisioning "+s+" answered")
		syncPost, syncPutDone := l.at("POST sync "+s), l.at("PUT sync "+s+" answered")
		if s != "1" && post < masterPUT {
			t.Errorf("slot %s: POST at %d, before the master key's PUT was answered (%d)", s, post, masterPUT)
		}
		if post < 0 || answer < post || put < answer {
			t.Errorf("slot %s: POST %d, LoadKey answer %d, PUT %d: want them in this order", s, post, answer, put)
		}
		if syncPost < putDone {
			t.Errorf("slot %s: sync POST at %d, before its injection report was answered (%d)", s, syncPost, putDone)
		}
		if syncPutDone < 0 || syncPutDone > l.at("done") {
			t.Errorf("slot %s: sync report answered at %d, Run returned at %d", s, syncPutDone, l.at("done"))
		}
	}
	if n := len(l.events); l.events[n-1] != "done" || n != 1+11*(2*4+1) {
		t.Errorf("%d events, want 4 requests with answers and a LoadKey answer per key, then done: %q", n, l.events)
	}
}

// TestKMSRequestBounds: an ECU has at most KMSRequestsPerECU requests in flight, the station
// at most KMSRequests.
func TestKMSRequestBounds(t *testing.T) {
	var mu sync.Mutex
	inFlight, perECU := 0, map[string]int{}
	maxAll, maxECU := 0, 0
	count := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			var r struct{ EcuID string }
			json.Unmarshal(body, &r)
			mu.Lock()
			inFlight++
			perECU[r.EcuID]++
			maxAll, maxECU = max(maxAll, inFlight), max(maxECU, perECU[r.EcuID])
			mu.Unlock()
			time.Sleep(20 * time.Millisecond) // lets requests pile up if nothing bounds them
			next.ServeHTTP(w, req)
			mu.Lock()
			inFlight--
			perECU[r.EcuID]--
			mu.Unlock()
		})
	}
	r := newRig(t, 3, ecu.Config{}, count)
	cfg := r.config(t, "master,supplier,secoc:4-C", true)
	cfg.KMSRequests, cfg.KMSRequestsPerECU = 5, 3
	sum := Run(context.Background(), cfg, r.targets)
	if !sum.OK() || sum.Totals.Syncs[Verified] != 33 {
		t.Fatalf("totals %+v", sum.Totals)
	}
	if maxECU > 3 || maxAll > 5 {
		t.Errorf("in flight at most %d per ECU (bound 3), %d in all (bound 5)", maxECU, maxAll)
	}
}

// TestBusGoesToLoadKeysFirst: a LoadKey waiting for the bus goes before a sync that waited
// longer; a waiter whose context ends leaves the queue.
func TestBusGoesToLoadKeysFirst(t *testing.T) {
	var b busLock
	ctx := context.Background()
	if err := b.acquire(ctx, loadKeyFirst); err != nil {
		t.Fatal(err)
	}
	order := make(chan string, 2)
	waitQueued := func(prio, n int) {
		for {
			b.mu.Lock()
			q := len(b.waiting[prio])
			b.mu.Unlock()
			if q == n {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	gone, cancel := context.WithCancel(ctx)
	cancelled := make(chan error)
	go func() { cancelled <- b.acquire(gone, syncAfter) }()
	waitQueued(syncAfter, 1)
	go func() { b.acquire(ctx, syncAfter); order <- "sync"; b.release() }()
	waitQueued(syncAfter, 2)
	cancel()
	if err := <-cancelled; err != context.Canceled {
		t.Fatalf("cancelled waiter: %v", err)
	}
	go func() { b.acquire(ctx, loadKeyFirst); order <- "LoadKey"; b.release() }()
	waitQueued(loadKeyFirst, 1)
	b.release()
	if first, second := <-order, <-order; first != "LoadKey" || second != "sync" {
		t.Errorf("bus went to %s, then %s", first, second)
	}
	if err := b.acquire(ctx, syncAfter); err != nil || !b.busy {
		t.Errorf("the bus is not free at the end: %v", err)
	}
}

// TestTesterPresentKeepsTheSessionWhileTheKMSIsSlow: the ECU's extended session lapses after
// S3 without a request (here 1 s); when the KMS takes longer than that between an ECU's
// conversations (here every sync POST is held 3 s), the station keeps the session with
// TesterPresent and every key still syncs. The margins are wide: ticks every 200 ms against 1 s.
func TestTesterPresentKeepsTheSessionWhileTheKMSIsSlow(t *testing.T) {
	slow := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method == http.MethodPost && req.URL.Path == kms.PathKeySync {
				time.Sleep(3 * time.Second)
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, 1, ecu.Config{S3: time.Second}, slow)
	cfg := r.config(t, "master,secoc:4", true)
	cfg.TesterPresent = 200 * time.Millisecond
	sum := Run(context.Background(), cfg, r.targets)
	if !sum.OK() || sum.Totals.Syncs[Verified] != 2 {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
}

package station

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shekit/shekit/openapi/kmswire"
	"github.com/shekit/shekit/server/kms"
	"github.com/shekit/shekit/server/reference"
	"github.com/shekit/shekit/simulator/ecu"
	"github.com/shekit/shekit/simulator/she"
	"github.com/shekit/shekit/vcan"
	"github.com/shekit/shekit/vcan/isotp"
)

// demoSecret is the demo registry's SupplierSecretKey of supplier 0x001D.
const demoSecret = "1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d"

// baseUID is a UID of the demo registry: EcuType 0x0001 of supplier 0x001D.
var baseUID = she.UID{0x00, 0x01, 0x00, 0x1d, 14: 0x01}

// rig is a reference server and a fleet of simulated ECUs on an in-memory bus.
type rig struct {
	srv     *reference.Server
	url     string
	hub     *vcan.Hub
	fleet   *ecu.Fleet
	targets []Target
}

// newRig starts n ECUs configured by base and a server; wrap, when set, wraps the server's handler.
func newRig(t testing.TB, n int, base ecu.Config, wrap func(http.Handler) http.Handler, hubOpts ...vcan.HubOption) *rig {
	t.Helper()
	srv, err := reference.New(context.Background(), reference.Config{DataDir: t.TempDir(), CLMKeys: "ecdsa"})
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	hub := vcan.NewHub(hubOpts...)
	if base.UID == (she.UID{}) {
		base.UID = baseUID
	}
	fleet, err := ecu.StartFleet(context.Background(), ecu.HubDialer(hub), base, n)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{srv: srv, url: ts.URL, hub: hub, fleet: fleet}
	for i := range n {
		req, resp, _ := ecu.FleetIDs(i, n)
		c, err := ecu.Dial(ecu.HubDialer(hub), req, resp)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		r.targets = append(r.targets, Target{Name: fmt.Sprintf("%#x:%#x", req, resp), Client: c})
	}
	t.Cleanup(func() {
		fleet.Stop()
		ts.Close()
		hub.Close()
		srv.Close()
	})
	return r
}

func (r *rig) config(t testing.TB, types string, sync bool) Config {
	t.Helper()
	keys, err := ParseKeys(types)
	if err != nil {
		t.Fatal(err)
	}
	return Config{KMS: &KMS{URL: r.url}, Keys: keys, Sync: sync, SupplierSecretKey: demoSecret,
		ClusterID: [8]byte{0xc1}, Model: [4]byte{0x4d}, StepTimeout: 5 * time.Second}
}

// audit returns the server's audit log.
func (r *rig) audit(t testing.TB) []kms.AuditEntry {
	t.Helper()
	a, err := r.srv.Store.Audit(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestProvisionsEveryKeyAndSyncs(t *testing.T) {
	r := newRig(t, 3, ecu.Config{}, nil)
	cfg := r.config(t, "secoc:4-C,supplier,master", true)
	var progress []int
	cfg.Progress = func(done, total int, _ *ECUResult) {
		if total != 3 {
			t.Errorf("progress total %d", total)
		}
		progress = append(progress, done)
	}
	sum := Run(context.Background(), cfg, r.targets)
	if !sum.OK() || sum.Totals.ECUsOK != 3 || sum.Totals.Keys[Injected] != 33 || sum.Totals.Syncs[Verified] != 33 {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
	if len(progress) != 3 || progress[2] != 3 {
		t.Errorf("progress calls %v", progress)
	}
	for i, e := range sum.ECUs {
		uid := ecu.FleetUID(baseUID, i)
		if e.UID != hex.EncodeToString(uid[:]) || e.EcuID != "c1000000000000004d000000"+hex.EncodeToString(uid[:]) {
			t.Errorf("ECU %d: UID %s EcuID %s", i, e.UID, e.EcuID)
		}
		if e.Keys[0].Type != "EcuMasterKey" || e.Keys[1].Type != "SupplierSymmKey" || e.Keys[2].KeyID != "4" || e.Keys[10].KeyID != "C" {
			t.Errorf("ECU %d: keys out of order: %+v", i, e.Keys)
		}
	}

	// The KMS holds every key as injected and synced...
	for i := range 3 {
		for _, id := range []she.KeyID{1, 4, 0xC, 0xD} {
			st, err := r.srv.Store.SlotState(context.Background(), kms.Slot{UID: ecu.FleetUID(baseUID, i), KeyID: id})
			if err != nil || st.Injected == nil || st.Pending != nil || st.SyncPending {
				t.Errorf("ECU %d slot %v: %+v %v", i, id, st, err)
			}
		}
	}
	// ...and the ECUs of one cluster share the SecOC keys: their MACs agree, the supplier keys' differ.
	msg := [16]byte([]byte("cluster check 16"))
	macs := map[she.KeyID]map[[16]byte]bool{4: {}, 0xD: {}}
	ctx := context.Background()
	for _, tg := range r.targets {
		for id := range macs {
			erc, mac, err := tg.Client.GenerateMAC(ctx, id, msg)
			if err != nil || erc != she.NoError {
				t.Fatalf("GenerateMAC %v: %v %v", id, erc, err)
			}
			macs[id][mac] = true
		}
	}
	if len(macs[4]) != 1 || len(macs[0xD]) != 3 {
		t.Errorf("distinct MACs: SecOC %d (want 1), supplier %d (want 3)", len(macs[4]), len(macs[0xD]))
	}

	// A second run moves every key on: new counters, all injected and verified again.
	before := len(r.audit(t))
	sum = Run(context.Background(), cfg, r.targets)
	if !sum.OK() || sum.Totals.Syncs[Verified] != 33 {
		t.Fatalf("second run: %+v", sum.Totals)
	}
	if got := len(r.audit(t)) - before; got != 33*4 {
		t.Errorf("second run: %d audit entries, want 132 (issue, report, sync issue, sync report per key)", got)
	}
	// SREG 0x1E: the station compared GetID's MAC itself and reported Success with no message.
	for _, e := range reports(r.audit(t), "sync-result", 1) {
		if e.Outcome != "Success" || e.Message != "" {
			t.Errorf("master sync report %+v", e)
		}
	}
}

// reports returns the audit entries of slot id whose action starts with action ("issue:",
// "result:", "sync-result").
func reports(entries []kms.AuditEntry, action string, id int) []kms.AuditEntry {
	var out []kms.AuditEntry
	for _, e := range entries {
		if strings.HasPrefix(e.Action, action) && e.KeyID == id {
			out = append(out, e)
		}
	}
	return out
}

func TestReportsWhatDiffered(t *testing.T) {
	for _, c := range []struct {
		name     string
		faults   ecu.Faults
		attempts int
		message  string
	}{
		{"wrong M5", ecu.Faults{WrongProof: true}, 1, "LoadKey: M5 mismatch: ECU "},
		{"NVM failure, retried with a new counter", ecu.Faults{NVMFailure: true}, 2, "LoadKey: NRC 0x72 generalProgrammingFailure"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, 1, ecu.Config{Faults: c.faults}, nil)
			sum := Run(context.Background(), r.config(t, "master", true), r.targets)
			k := sum.ECUs[0].Keys[0]
			if sum.OK() || k.Outcome != Failed || k.Attempts != c.attempts || !strings.HasPrefix(k.Message, c.message) || k.Sync != nil {
				t.Fatalf("key result %+v", k)
			}
			entries := r.audit(t)
			issues, reps := reports(entries, "issue:", 1), reports(entries, "result:", 1)
			if len(issues) != c.attempts || len(reps) != c.attempts {
				t.Fatalf("audit: %d issues, %d reports, want %d each: %+v", len(issues), len(reps), c.attempts, entries)
			}
			if c.attempts == 2 && *issues[0].Counter == *issues[1].Counter {
				t.Errorf("the retry reused counter %d", *issues[0].Counter)
			}
			for _, e := range reps {
				if e.Outcome != "OperationFailed" || !strings.HasPrefix(e.Message, c.message) {
					t.Errorf("reported %q %q, want failed %q", e.Outcome, e.Message, c.message)
				}
			}
		})
	}
}

func TestSyncMismatchIsReported(t *testing.T) {
	// A KMS whose KeySyncValue is off by one bit: the ECU must say so, and the station report it.
	flip := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if req.Method != http.MethodPost || req.URL.Path != kms.PathKeySync {
				next.ServeHTTP(w, req)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, req)
			var env kms.Envelope
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Records == nil {
				t.Errorf("sync answer %s", rec.Body)
				return
			}
			b, _ := hex.DecodeString(env.Records.KeySyncValue)
			b[0] ^= 1
			env.Records.KeySyncValue = hex.EncodeToString(b)
			json.NewEncoder(w).Encode(env)
		})
	}
	r := newRig(t, 1, ecu.Config{}, flip)
	sum := Run(context.Background(), r.config(t, "master,secoc:5", true), r.targets)
	if sum.OK() || sum.Totals.Keys[Injected] != 2 || sum.Totals.Syncs[Mismatch] != 2 {
		t.Fatalf("totals %+v", sum.Totals)
	}
	for _, k := range sum.ECUs[0].Keys {
		want := map[string]string{"EcuMasterKey": "GetID: MAC mismatch", "SecOCKey": "VerifyMAC: the ECU's key does not give"}[k.Type]
		if !strings.HasPrefix(k.Sync.Message, want) {
			t.Errorf("%s sync message %q, want %q…", k.Type, k.Sync.Message, want)
		}
	}
	entries := r.audit(t)
	for _, id := range []int{1, 5} {
		rs := reports(entries, "sync-result", id)
		if len(rs) != 1 || rs[0].Outcome != "OperationFailed" || !strings.Contains(rs[0].Message, "mismatch") && !strings.Contains(rs[0].Message, "does not give") {
			t.Errorf("slot %d sync reports %+v", id, rs)
		}
	}
}

func TestUnreachableECUAndRefusingKMS(t *testing.T) {
	r := newRig(t, 2, ecu.Config{}, nil)
	silent := newRig(t, 1, ecu.Config{Faults: ecu.Faults{Silent: true}}, nil)
	cfg := r.config(t, "master,secoc:4", false)
	cfg.StepTimeout = 2 * time.Second // the silent ECU's late answer is awaited this long
	cfg.SupplierSecretKey = "00112233445566778899aabbccddeeff"
	sum := Run(context.Background(), cfg, []Target{r.targets[0], silent.targets[0]})
	ok, dead := sum.ECUs[0], sum.ECUs[1]
	if dead.OK || dead.Error != "session and SecurityAccess: no answer in time" || len(dead.Keys) != 0 {
		t.Errorf("silent ECU: %+v", dead)
	}
	if ok.OK || ok.Keys[0].Outcome != Injected || ok.Keys[1].Outcome != Refused ||
		ok.Keys[1].Message != "KMS refused: The SupplierSecretKey:00112233445566778899aabbccddeeff is not registerd. (SECRET_NOT_REGISTERED)" ||
		ok.Keys[1].Attempts != 1 {
		t.Errorf("refused SecOC key: %+v", ok.Keys)
	}
}

func TestKMSServerErrorsAreRetried(t *testing.T) {
	// The first POST of each key is answered 503: the station asks again, and succeeds.
	seen := map[string]bool{}
	flaky := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			body, _ := io.ReadAll(req.Body)
			req.Body = io.NopCloser(bytes.NewReader(body))
			if req.Method == http.MethodPost && !seen[string(body)] {
				seen[string(body)] = true
				http.Error(w, "busy", http.StatusServiceUnavailable)
				return
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, 1, ecu.Config{}, flaky)
	sum := Run(context.Background(), r.config(t, "master,supplier", false), r.targets)
	for _, k := range sum.ECUs[0].Keys {
		if k.Outcome != Injected || k.Attempts != 2 {
			t.Errorf("%+v", k)
		}
	}
}

func TestParseKeys(t *testing.T) {
	for _, c := range []struct {
		in, want, err string
	}{
		{"master,supplier,secoc:4-C", "EcuMasterKey/1 SupplierSymmKey/D SecOCKey/4 SecOCKey/5 SecOCKey/6 SecOCKey/7 SecOCKey/8 SecOCKey/9 SecOCKey/A SecOCKey/B SecOCKey/C", ""},
		{"secoc:b,supplier, master", "EcuMasterKey/1 SupplierSymmKey/D SecOCKey/B", ""},
		{"secoc:7-5", "", `"secoc:7-5"`},
		{"secoc:3", "", "4..C"},
		{"secoc:D", "", "4..C"},
		{"secoc:4-C,secoc:5", "", "listed twice"},
		{"boot", "", "not master"},
		{"", "", "not master"},
	} {
		keys, err := ParseKeys(c.in)
		var got []string
		for _, k := range keys {
			got = append(got, k.String())
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: error %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != c.want {
			t.Errorf("%q: %v %v, want %s", c.in, got, err, c.want)
		}
	}
}

func TestLateAnswersEndWithTheRightOutcome(t *testing.T) {
	// Every answer of the ECU comes 300 ms late (P2 50 ms + the client's 50 ms margin: each
	// request times out first). The station waits for the late answers and uses them: every key
	// goes in once, is reported Success once and verified; nothing is reported as failed.
	r := newRig(t, 1, ecu.Config{Faults: ecu.Faults{LateAnswers: 300 * time.Millisecond}}, nil)
	sum := Run(context.Background(), r.config(t, "master,supplier,secoc:4-C", true), r.targets)
	e := sum.ECUs[0]
	if !sum.OK() || len(e.Keys) != 11 || sum.Totals.Keys[Injected] != 11 || sum.Totals.Syncs[Verified] != 11 {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
	for _, k := range e.Keys {
		if k.Attempts != 1 {
			t.Errorf("%s/%s: %d attempts, want 1", k.Type, k.KeyID, k.Attempts)
		}
	}
	if e.LateAnswers == 0 || e.DiscardedAnswers != 0 {
		t.Errorf("late answers %d (want some), discarded %d (want none)", e.LateAnswers, e.DiscardedAnswers)
	}
	entries := r.audit(t)
	for _, id := range []int{1, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13} {
		issues, results, syncs := reports(entries, "issue:", id), reports(entries, "result:", id), reports(entries, "sync-result", id)
		if len(issues) != 1 || len(results) != 1 || results[0].Outcome != "Success" || len(syncs) != 1 || syncs[0].Outcome != "Success" {
			t.Errorf("slot %d: issues %+v, results %+v, syncs %+v", id, issues, results, syncs)
		}
	}
}

// dropLoadKeyAnswers is an ECU's transport that loses every LoadKey answer.
type dropLoadKeyAnswers struct{ isotp.Transport }

func (d dropLoadKeyAnswers) Send(ctx context.Context, msg []byte) error {
	if bytes.HasPrefix(msg, []byte{0x71, 0x01, 0xFD, 0x10}) {
		return nil
	}
	return d.Transport.Send(ctx, msg)
}

func TestUnansweredLoadKeyIsNotReportedAsFailed(t *testing.T) {
	// The ECU stores the key, but its answer never comes: the station says "no answer" and
	// reports nothing (the key may be in; here it is).
	r := newRig(t, 0, ecu.Config{}, nil)
	et, err := ecu.Transport(ecu.HubDialer(r.hub), ecu.DefaultResponseID, ecu.DefaultRequestID)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ecu.New(ecu.Config{UID: baseUID, P2Star: 200 * time.Millisecond}, dropLoadKeyAnswers{et})
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
	cfg := r.config(t, "master", false)
	cfg.Retries = -1
	sum := Run(context.Background(), cfg, []Target{{Name: "dropping", Client: c}})
	k := sum.ECUs[0].Keys
	if len(k) != 1 || k[0].Outcome != NoAnswer || k[0].Message != "LoadKey: no answer in time, not even late; not reported" {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
	if rs := reports(r.audit(t), "result:", 1); len(rs) != 0 {
		t.Errorf("reported %+v", rs)
	}
	if st, err := r.srv.Store.SlotState(context.Background(), kms.Slot{UID: baseUID, KeyID: she.MasterECUKey}); err != nil || st.Pending == nil || st.Injected != nil {
		t.Errorf("KMS slot state %+v %v, want the issue pending", st, err)
	}
	if e.Engine().NVM().Slots[she.MasterECUKey].Counter != 1 {
		t.Errorf("the key did not go in: the test proves nothing")
	}
}

// TestRNGInitAtBootSyncsTheMasterKey: ECUs that initialize their RNG at boot answer GET_ID with
// SREG 0x3E, not the 0x1E the master key's KeySyncValue assumes. The station reports the ECU's
// GET_ID answer and the KMS checks the MAC over that SREG: every key, the master key included,
// is injected and verified end to end.
func TestRNGInitAtBootSyncsTheMasterKey(t *testing.T) {
	r := newRig(t, 2, ecu.Config{RNGInitAtBoot: true}, nil)
	sum := Run(context.Background(), r.config(t, "master,supplier,secoc:4", true), r.targets)
	if !sum.OK() || sum.Totals.Keys[Injected] != 6 || sum.Totals.Syncs[Verified] != 6 {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
	for i, e := range sum.ECUs {
		if m := e.Keys[0].Sync.Message; m != "GetID SREG 0x3e: the MAC checked by the KMS" {
			t.Errorf("ECU %d: master sync message %q", i, m)
		}
		st, err := r.srv.Store.SlotState(context.Background(), kms.Slot{UID: ecu.FleetUID(baseUID, i), KeyID: she.MasterECUKey})
		if err != nil || st.Injected == nil || st.SyncPending {
			t.Errorf("ECU %d master slot %+v %v", i, st, err)
		}
	}
	rs := reports(r.audit(t), "sync-result", 1)
	for _, e := range rs {
		if e.Outcome != "Success" || !strings.HasPrefix(e.Message, "GET_ID Challenge=") || !strings.Contains(e.Message, " SREG=3e ") {
			t.Errorf("master sync report %+v", e)
		}
	}
	if len(rs) != 2 {
		t.Errorf("%d master sync reports, want 2", len(rs))
	}
}

// TestGetIDAnswerTheKMSRefuses: when the KMS finds that the GET_ID answer of an ECU with SREG 0x3E
// does not match (here: a MAC altered on its way), the station reports the sync OperationFailed
// and calls it a mismatch, never verified.
func TestGetIDAnswerTheKMSRefuses(t *testing.T) {
	alter := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			var body kms.ReportRequest
			if req.Method == http.MethodPut && req.URL.Path == kms.PathKeySync {
				b, _ := io.ReadAll(req.Body)
				json.Unmarshal(b, &body)
				if a, ok := kmswire.ParseGetIDAnswer(body.ResultMessage); ok {
					a.MAC[0] ^= 1
					body.ResultMessage = a.String()
					b, _ = json.Marshal(body)
				}
				req.Body = io.NopCloser(bytes.NewReader(b))
				req.ContentLength = int64(len(b))
			}
			next.ServeHTTP(w, req)
		})
	}
	r := newRig(t, 1, ecu.Config{RNGInitAtBoot: true}, alter)
	sum := Run(context.Background(), r.config(t, "master", true), r.targets)
	k := sum.ECUs[0].Keys[0]
	if sum.OK() || k.Outcome != Injected || k.Sync == nil || k.Sync.Outcome != Mismatch ||
		!strings.HasPrefix(k.Sync.Message, "GetID: MAC mismatch (SREG 0x3e), checked by the KMS") {
		out, _ := json.MarshalIndent(sum, "", " ")
		t.Fatalf("summary:\n%s", out)
	}
	rs := reports(r.audit(t), "sync-result", 1)
	if len(rs) != 1 || rs[0].Outcome != "OperationFailed" || !strings.Contains(rs[0].Message, "does not match") {
		t.Errorf("master sync reports %+v", rs)
	}
}

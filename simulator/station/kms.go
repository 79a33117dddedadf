package station

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	kms "github.com/shekit/shekit/openapi/kmswire"
)

// KMS is a client of the KMS supplier API.
type KMS struct {
	URL  string       // base URL, e.g. http://127.0.0.1:8443
	HTTP *http.Client // default: http.DefaultTransport's settings keeping up to 256 idle connections

	Token string // bearer token, when the KMS wants one
}

// defaultHTTP keeps a connection for each of the station's concurrent requests (the default
// transport keeps two per host, and would open a new connection for most requests).
var defaultHTTP = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	return &http.Client{Transport: t}
}()

// RefusedError is a KMS answer with ResultStatus OperationFailed.
type RefusedError struct {
	Reason, Message string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("KMS refused: %s (%s)", e.Message, e.Reason)
}

// ServerError is an answer that is not an envelope the station can act on: a transport failure,
// a status other than 200, or a body that is not the envelope. Retrying the same request is safe.
type ServerError struct {
	Err error
}

func (e *ServerError) Error() string { return "KMS: " + e.Err.Error() }
func (e *ServerError) Unwrap() error { return e.Err }

// call sends body to path with method and decodes the envelope; a refusal is a *RefusedError.
func (k *KMS) call(ctx context.Context, method, path string, body any) (*kms.Envelope, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(k.URL, "/")+path, bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if k.Token != "" {
		req.Header.Set("Authorization", "Bearer "+k.Token)
	}
	c := k.HTTP
	if c == nil {
		c = defaultHTTP
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, &ServerError{err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, &ServerError{err}
	}
	var env kms.Envelope
	if err := json.Unmarshal(data, &env); err != nil || env.ResultStatus == "" {
		return nil, &ServerError{fmt.Errorf("%s %s: HTTP %d, not an envelope: %.200q", method, path, resp.StatusCode, data)}
	}
	if env.ResultStatus != "Success" {
		return &env, &RefusedError{Reason: env.ResultReason, Message: env.ResultMessage}
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &ServerError{fmt.Errorf("%s %s: HTTP %d with ResultStatus Success", method, path, resp.StatusCode)}
	}
	return &env, nil
}

// Provision asks for the M1–M5 of one key update (POST supplierKeyProvisioning).
func (k *KMS) Provision(ctx context.Context, req kms.ProvisionRequest) (kms.Records, error) {
	env, err := k.call(ctx, http.MethodPost, kms.PathProvisioning, req)
	if err != nil {
		return kms.Records{}, err
	}
	if env.Records == nil {
		return kms.Records{}, &ServerError{fmt.Errorf("POST %s: Success without Records", kms.PathProvisioning)}
	}
	return *env.Records, nil
}

// SyncValue asks for a challenge and the KeySyncValue the key in the slot must give for it (POST
// supplierKeySyncValue).
func (k *KMS) SyncValue(ctx context.Context, req kms.SyncRequest) (kms.Records, error) {
	env, err := k.call(ctx, http.MethodPost, kms.PathKeySync, req)
	if err != nil {
		return kms.Records{}, err
	}
	if env.Records == nil {
		return kms.Records{}, &ServerError{fmt.Errorf("POST %s: Success without Records", kms.PathKeySync)}
	}
	return *env.Records, nil
}

// Report reports an outcome with PUT to path (kms.PathProvisioning or kms.PathKeySync).
func (k *KMS) Report(ctx context.Context, path string, req kms.ReportRequest) error {
	_, err := k.call(ctx, http.MethodPut, path, req)
	return err
}

package w3cvc

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Status entry and list types.
const (
	StatusTypeBitstring  = "BitstringStatusListEntry"
	StatusTypeList2021   = "StatusList2021Entry"
	statusListBitstring  = "BitstringStatusList"
	statusListStatus2021 = "StatusList2021"
	statusPurposeRevoke  = "revocation"
	statusPurposeSuspend = "suspension"
	maxStatusEntries     = 8
)

// statusList is a fetched, verified and decoded status list.
type statusList struct {
	issuer  string
	purpose string
	bits    []byte
	fetched time.Time
}

// checkStatus checks c's credentialStatus entries of the supported types;
// other types are ignored.
func (v *Verifier) checkStatus(ctx context.Context, c *Credential) error {
	var entries []map[string]any
	switch s := c.Document["credentialStatus"].(type) {
	case nil:
		return nil
	case map[string]any:
		entries = []map[string]any{s}
	case []any:
		for _, e := range s {
			if m, ok := e.(map[string]any); ok {
				entries = append(entries, m)
			}
		}
	default:
		return newErr(ReasonMalformed, "credentialStatus is not an object")
	}
	if len(entries) > maxStatusEntries {
		return newErr(ReasonMalformed, "too many credentialStatus entries")
	}
	for _, e := range entries {
		typ, _ := e["type"].(string)
		if typ != StatusTypeBitstring && typ != StatusTypeList2021 {
			continue
		}
		purpose, _ := e["statusPurpose"].(string)
		url, _ := e["statusListCredential"].(string)
		idx, err := statusIndex(e["statusListIndex"])
		if err != nil || url == "" || purpose == "" {
			return newErr(ReasonMalformed, typ+" needs statusPurpose, statusListIndex and statusListCredential")
		}
		list, err := v.statusList(ctx, url)
		if err != nil {
			return err
		}
		if list.issuer != c.Issuer {
			return newErr(ReasonStatusUnavailable, "status list "+truncate(url)+" is not issued by the credential's issuer")
		}
		if list.purpose != purpose {
			return newErr(ReasonStatusUnavailable, fmt.Sprintf("status list %s is for %.40q, the entry for %.40q", truncate(url), list.purpose, purpose))
		}
		if idx/8 >= len(list.bits) {
			return newErr(ReasonMalformed, fmt.Sprintf("statusListIndex %d is beyond the list's %d entries", idx, len(list.bits)*8))
		}
		if list.bits[idx/8]&(0x80>>(idx%8)) != 0 {
			switch purpose {
			case statusPurposeRevoke:
				return newErr(ReasonRevoked, "the credential is revoked")
			case statusPurposeSuspend:
				return newErr(ReasonRevoked, "the credential is suspended")
			}
			// Other purposes (message...) are not a refusal.
		}
	}
	return nil
}

func statusIndex(v any) (int, error) {
	var s string
	switch t := v.(type) {
	case string:
		s = t
	case float64:
		s = strconv.FormatFloat(t, 'f', -1, 64)
	default:
		return 0, fmt.Errorf("no index")
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n >= MaxStatusListBits*8 {
		return 0, fmt.Errorf("bad index")
	}
	return n, nil
}

// statusList returns the list at url, from the cache or fetched.
func (v *Verifier) statusList(ctx context.Context, url string) (*statusList, error) {
	t := v.cfg.Now()
	if v.cfg.StatusCacheTTL > 0 {
		v.mu.Lock()
		l, ok := v.status[url]
		v.mu.Unlock()
		if ok && t.Sub(l.fetched) < v.cfg.StatusCacheTTL {
			return l, nil
		}
	}
	l, err := v.fetchStatusList(ctx, url)
	if err != nil {
		return nil, err
	}
	l.fetched = t
	if v.cfg.StatusCacheTTL > 0 {
		v.mu.Lock()
		if len(v.status) > 1024 {
			clear(v.status)
		}
		v.status[url] = l
		v.mu.Unlock()
	}
	return l, nil
}

func (v *Verifier) fetchStatusList(ctx context.Context, url string) (*statusList, error) {
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return nil, newErr(ReasonStatusUnavailable, "status list URL "+truncate(url)+" is not HTTP(S)")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, wrapErr(ReasonStatusUnavailable, "status list URL", err)
	}
	req.Header.Set("Accept", "application/vc+ld+json, application/vc+jwt, application/ld+json, application/json")
	v.cfg.Logger.Debug("w3cvc: fetching status list", "url", url)
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, wrapErr(ReasonStatusUnavailable, "fetch status list "+truncate(url), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, newErr(ReasonStatusUnavailable, fmt.Sprintf("fetch status list %s: HTTP %d", truncate(url), resp.StatusCode))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxStatusListSize+1))
	if err != nil {
		return nil, wrapErr(ReasonStatusUnavailable, "read status list "+truncate(url), err)
	}
	if len(body) > MaxStatusListSize {
		return nil, newErr(ReasonStatusUnavailable, "status list "+truncate(url)+" is too large")
	}
	c, err := v.verifyCredential(ctx, body, false)
	if err != nil {
		return nil, wrapErr(ReasonStatusUnavailable, "status list credential "+truncate(url)+" does not verify", err)
	}
	subj, _ := c.Document["credentialSubject"].(map[string]any)
	typ, _ := subj["type"].(string)
	if typ != statusListBitstring && typ != statusListStatus2021 {
		return nil, newErr(ReasonStatusUnavailable, "status list credential "+truncate(url)+" has no BitstringStatusList or StatusList2021 subject")
	}
	purpose, _ := subj["statusPurpose"].(string)
	enc, _ := subj["encodedList"].(string)
	bits, err := decodeStatusBits(enc)
	if err != nil {
		return nil, wrapErr(ReasonStatusUnavailable, "status list "+truncate(url), err)
	}
	return &statusList{issuer: c.Issuer, purpose: purpose, bits: bits}, nil
}

// decodeStatusBits decodes an encodedList: GZIP-compressed, base64url
// (optionally multibase "u"-prefixed, padded or not; plain base64 too).
func decodeStatusBits(enc string) ([]byte, error) {
	if enc == "" {
		return nil, fmt.Errorf("empty encodedList")
	}
	s := enc
	if strings.HasPrefix(enc, "uH4s") { // multibase base64url of GZIP data
		s = enc[1:]
	}
	var z []byte
	var err error
	for _, e := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if z, err = e.DecodeString(s); err == nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("encodedList is not base64url")
	}
	zr, err := gzip.NewReader(bytes.NewReader(z))
	if err != nil {
		return nil, fmt.Errorf("encodedList is not GZIP: %w", err)
	}
	bits, err := io.ReadAll(io.LimitReader(zr, MaxStatusListBits+1))
	if err != nil {
		return nil, fmt.Errorf("encodedList: %w", err)
	}
	if len(bits) > MaxStatusListBits {
		return nil, fmt.Errorf("encodedList decompresses to more than %d bytes", MaxStatusListBits)
	}
	return bits, nil
}

// EncodeStatusList encodes a status bitstring (index 0 is the most
// significant bit of byte 0) as a BitstringStatusList encodedList: GZIP,
// then multibase base64url ("u" prefix).
func EncodeStatusList(bits []byte) (string, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(bits); err != nil {
		return "", err
	}
	if err := zw.Close(); err != nil {
		return "", err
	}
	return "u" + base64.RawURLEncoding.EncodeToString(buf.Bytes()), nil
}

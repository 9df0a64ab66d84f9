package email

import (
	"bufio"
	"bytes"
	"io"
	"strings"

	"github.com/emersion/go-message"
)

// dsnInfo is what a delivery status notification (RFC 3464) says about the
// first recipient it reports on.
type dsnInfo struct {
	recipient, action, status, diagnostic string
}

// parseDSN reads a multipart/report; report-type=delivery-status mail and
// returns its first per-recipient fields.
func parseDSN(raw []byte) (dsnInfo, bool) {
	e, err := message.Read(bytes.NewReader(raw))
	if e == nil || (err != nil && !message.IsUnknownCharset(err)) {
		return dsnInfo{}, false
	}
	mt, params, _ := e.Header.ContentType()
	if !strings.EqualFold(mt, "multipart/report") || !strings.EqualFold(params["report-type"], "delivery-status") {
		return dsnInfo{}, false
	}
	mr := e.MultipartReader()
	for i := 0; mr != nil && i < 16; i++ {
		p, err := mr.NextPart()
		if err != nil || p == nil {
			break
		}
		pmt, _, _ := p.Header.ContentType()
		if !strings.EqualFold(pmt, "message/delivery-status") && !strings.EqualFold(pmt, "message/global-delivery-status") {
			continue
		}
		body, _ := io.ReadAll(io.LimitReader(p.Body, 64<<10))
		var info dsnInfo
		sc := bufio.NewScanner(bytes.NewReader(body))
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			if !ok {
				continue
			}
			v = safeText(strings.TrimSpace(v), 200)
			switch strings.ToLower(strings.TrimSpace(k)) {
			case "final-recipient":
				if info.recipient == "" {
					info.recipient = v
				}
			case "action":
				if info.action == "" {
					info.action = v
				}
			case "status":
				if info.status == "" {
					info.status = v
				}
			case "diagnostic-code":
				if info.diagnostic == "" {
					info.diagnostic = v
				}
			}
		}
		return info, true
	}
	return dsnInfo{}, true
}

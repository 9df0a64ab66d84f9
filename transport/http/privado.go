package http

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/agentd/agentd/agent"
)

// Paths of the proof-request service (seed 000's, exactly).
const (
	ProofRequestPath = "/v1/proof/request/"
	ProofVerifyPath  = "/v1/proof/verify/"
	ConsentPath      = "/v1/users/consent/"
	InteractionsPath = "/v1/interactions/"
	// InteractionsLoginPath mails a user a link to their interactions.
	InteractionsLoginPath = "/v1/interactions/login"
	APIKeyHeader          = "X-Api-Key"
	maxProofBody          = 2 << 20
	maxPrivadoRequest     = 64 << 10
)

// Privado is the proof-request service for exchanges. The daemon
// implements it over package protocols/privado. Errors are *agent.Error
// values naming the field.
type Privado interface {
	// AuthenticateExchange returns the id of the active exchange whose API
	// key this is; any error answers 401.
	AuthenticateExchange(ctx context.Context, apiKey string) (string, error)
	// RequestProof takes an exchange's proof request.
	RequestProof(ctx context.Context, exchangeID string, req ProofRequestBody) (PrivadoInteraction, error)
	// VerifyProof verifies a proof again for its exchange.
	VerifyProof(ctx context.Context, exchangeID, proof string) (ProofVerification, error)
	// ConsentInfo says what a consent token is about; Consent decides.
	ConsentInfo(ctx context.Context, token string) (ConsentAnswer, error)
	Consent(ctx context.Context, token string, yes bool) (ConsentAnswer, error)
	// UserInteractions lists a token owner's interactions, newest first,
	// after the cursor after.
	UserInteractions(ctx context.Context, token, vaspID, after string, limit int) ([]PrivadoInteraction, error)
	// MailLoginLink mails the account of an address a link that reads its
	// interactions (nil whether or not there is one).
	MailLoginLink(ctx context.Context, email string) error
	// QRCode is the PNG QR code of a link.
	QRCode(link string) ([]byte, error)
}

// PrivadoAdmin is the operators' part of the service.
type PrivadoAdmin interface {
	CreateExchange(ctx context.Context, req CreateExchangeRequest) (ExchangeCredentials, error)
	Exchanges(ctx context.Context, after string, limit int) ([]PrivadoExchange, error)
	Exchange(ctx context.Context, id string) (PrivadoExchange, error)
	RotateExchangeKeys(ctx context.Context, id string) (ExchangeCredentials, error)
	DisableExchange(ctx context.Context, id string) (PrivadoExchange, error)
	// Interactions lists interactions newest first, after the cursor after.
	Interactions(ctx context.Context, vaspID, userID, state, after string, limit int) ([]PrivadoInteraction, error)
	Interaction(ctx context.Context, id string) (PrivadoInteraction, error)
}

// ProofRequestBody is the body of POST /v1/proof/request/.
type ProofRequestBody struct {
	UserReference string `json:"userReference"`
	// Challenge is an integer from 1 to 4294967295.
	Challenge json.RawMessage `json:"challenge"`
	Callback  string          `json:"callback"`
	// Query, when set, replaces the exchange's proof template.
	Query map[string]any `json:"query,omitempty"`
}

// ProofVerifyBody is the body of POST /v1/proof/verify/.
type ProofVerifyBody struct {
	Proof string `json:"proof"`
}

// LoginLinkBody is the body of POST /v1/interactions/login.
type LoginLinkBody struct {
	Email string `json:"email"`
}

// ConsentBody is the body of POST /v1/users/consent/.
type ConsentBody struct {
	// Consent is "yes" or "no".
	Consent string `json:"consent"`
}

// PrivadoTransition is one recorded state change.
type PrivadoTransition struct {
	From  string    `json:"from,omitempty"`
	To    string    `json:"to"`
	At    time.Time `json:"at"`
	Cause string    `json:"cause"`
}

// PrivadoInteraction is an interaction (a proof request) as shown.
type PrivadoInteraction struct {
	ID             string              `json:"id"`
	VASPID         string              `json:"vasp_id"`
	VASPName       string              `json:"vasp_name"`
	UserReference  string              `json:"userReference"`
	Challenge      uint32              `json:"challenge"`
	State          string              `json:"state"`
	What           string              `json:"what"`
	Created        time.Time           `json:"created"`
	Updated        time.Time           `json:"updated"`
	ConsentExpires time.Time           `json:"consentExpires"`
	ProofExpires   time.Time           `json:"proofExpires,omitzero"`
	ProofKind      string              `json:"proofKind,omitempty"`
	CircuitID      string              `json:"circuitId,omitempty"`
	Issuer         string              `json:"issuer,omitempty"`
	VerifiedAt     time.Time           `json:"verifiedAt,omitzero"`
	History        []PrivadoTransition `json:"history"`
}

// PrivadoWallet is how the wallet reaches the iden3 request.
type PrivadoWallet struct {
	SessionID     string    `json:"sessionId"`
	RequestURI    string    `json:"request_uri"`
	DeepLink      string    `json:"deepLink"`
	UniversalLink string    `json:"universalLink"`
	QRPNG         string    `json:"qrPng,omitempty"`
	Expires       time.Time `json:"expires"`
}

// ConsentAnswer answers the consent routes.
type ConsentAnswer struct {
	Interaction PrivadoInteraction `json:"interaction"`
	Decided     bool               `json:"decided"`
	Wallet      *PrivadoWallet     `json:"wallet,omitempty"`
}

// ProofVerification answers POST /v1/proof/verify/.
type ProofVerification struct {
	Valid         bool   `json:"valid"`
	Reason        string `json:"reason"`
	ProofKind     string `json:"proofKind,omitempty"`
	UserReference string `json:"userReference"`
	Challenge     uint32 `json:"challenge"`
	InteractionID string `json:"interactionId"`
}

// CreateExchangeRequest is the body of POST /admin/privado/exchanges.
type CreateExchangeRequest struct {
	Name              string          `json:"name"`
	CallbackAllowList []string        `json:"callback_allow_list"`
	ProofTemplate     json.RawMessage `json:"proof_template,omitempty"`
}

// ExchangeCredentials are an exchange's API key and HMAC secret, shown once.
type ExchangeCredentials struct {
	ID         string `json:"id"`
	APIKey     string `json:"api_key"`
	HMACSecret string `json:"hmac_secret"`
}

// PrivadoExchange is a registered exchange (no key, no secret).
type PrivadoExchange struct {
	ID                string          `json:"id"`
	Name              string          `json:"name"`
	CallbackAllowList []string        `json:"callback_allow_list"`
	ProofTemplate     json.RawMessage `json:"proof_template,omitempty"`
	State             string          `json:"state"`
	Created           time.Time       `json:"created"`
	Updated           time.Time       `json:"updated"`
	KeysRotated       time.Time       `json:"keys_rotated"`
}

// NewPrivadoAPI returns the proof-request routes: the public ones over p,
// the admin ones over admin (either may be nil).
func NewPrivadoAPI(p Privado, admin PrivadoAdmin) Feature {
	return &privadoAPI{p: p, admin: admin}
}

type privadoAPI struct {
	p     Privado
	admin PrivadoAdmin
}

// Routes implements Feature.
func (a *privadoAPI) Routes(r *Routes) {
	if a.p != nil {
		r.Public("POST "+ProofRequestPath, "privado-request", a.request)
		r.Public("POST "+ProofVerifyPath, "privado-verify", a.verify)
		r.Public("GET "+ConsentPath, "privado-consent-page", a.consentPage)
		r.Public("POST "+ConsentPath, "privado-consent", a.consent)
		r.Public("GET "+InteractionsPath, "privado-interactions", a.userList)
		r.Public("POST "+InteractionsLoginPath, "privado-login", a.login)
	}
	if a.admin == nil {
		return
	}
	r.Admin("POST /admin/privado/exchanges", Op{Summary: "Register an exchange (its API key and HMAC secret are shown once)",
		Request: CreateExchangeRequest{}, Response: ExchangeCredentials{}, Status: http.StatusCreated}, a.createExchange)
	r.Admin("GET /admin/privado/exchanges", Op{Summary: "List the exchanges", Response: Page[PrivadoExchange]{Key: "exchanges"},
		Query: pageQuery}, a.listExchanges)
	r.Admin("GET /admin/privado/exchanges/{id}", Op{Summary: "Describe an exchange", Response: PrivadoExchange{}}, a.getExchange)
	r.Admin("POST /admin/privado/exchanges/{id}/rotate-keys", Op{Summary: "Give an exchange a new API key and HMAC secret (shown once)",
		Response: ExchangeCredentials{}}, a.rotate)
	r.Admin("POST /admin/privado/exchanges/{id}/disable", Op{Summary: "Disable an exchange (final)", Response: PrivadoExchange{}}, a.disable)
	r.Admin("GET /admin/privado/interactions", Op{Summary: "List the proof requests, newest first",
		Response: Page[PrivadoInteraction]{Key: "interactions"},
		Query: append([]Param{{Name: "vasp_id", Description: "an exchange's id"}, {Name: "user_id", Description: "a user account's id"},
			{Name: "state", Description: "ProofRequest, GivenConsent, NotGivenConsent, ProofShared, Expired or Failed"}}, pageQuery...)},
		a.listInteractions)
	r.Admin("GET /admin/privado/interactions/{id}", Op{Summary: "Describe a proof request", Response: PrivadoInteraction{}}, a.getInteraction)
}

// exchange authenticates the request's exchange by its API key, answering
// 401 itself when it fails.
func (a *privadoAPI) exchange(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.Header.Get(APIKeyHeader)
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && key == "" {
		key = strings.TrimSpace(b)
	}
	if key != "" {
		if id, err := a.p.AuthenticateExchange(r.Context(), key); err == nil {
			return id, true
		} else if statusOf(err) >= 500 {
			fail(w, r, err)
			return "", false
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="exchanges"`)
	writeJSON(w, http.StatusUnauthorized, ErrorBody{Error: "unauthorized",
		Reason: "send the exchange's API key as Authorization: Bearer <key> or " + APIKeyHeader})
	return "", false
}

func (a *privadoAPI) request(w http.ResponseWriter, r *http.Request) {
	id, ok := a.exchange(w, r)
	if !ok {
		return
	}
	var req ProofRequestBody
	if err := readStrictN(w, r, &req, maxPrivadoRequest); err != nil {
		fail(w, r, err)
		return
	}
	v, err := a.p.RequestProof(r.Context(), id, req)
	respond(w, r, http.StatusCreated, v, err)
}

func (a *privadoAPI) verify(w http.ResponseWriter, r *http.Request) {
	id, ok := a.exchange(w, r)
	if !ok {
		return
	}
	var req ProofVerifyBody
	if err := readStrictN(w, r, &req, maxProofBody); err != nil {
		fail(w, r, err)
		return
	}
	v, err := a.p.VerifyProof(r.Context(), id, req.Proof)
	respond(w, r, http.StatusOK, v, err)
}

func (a *privadoAPI) login(w http.ResponseWriter, r *http.Request) {
	var req LoginLinkBody
	if err := readStrict(w, r, &req); err != nil {
		fail(w, r, err)
		return
	}
	err := a.p.MailLoginLink(r.Context(), req.Email)
	noStore(w)
	respond(w, r, http.StatusAccepted, map[string]string{
		"status": "if this address has an account, a link to its proof requests is on its way"}, err)
}

func (a *privadoAPI) userList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	noStore(w)
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		a.userPage(w, r)
		return
	}
	list(w, r, "interactions", func(v PrivadoInteraction) string { return v.ID },
		func(ctx context.Context, after string, limit int) ([]PrivadoInteraction, error) {
			return a.p.UserInteractions(ctx, q.Get("token"), q.Get("vasp_id"), after, limit)
		})
}

func (a *privadoAPI) consentPage(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	ans, err := a.p.ConsentInfo(r.Context(), token)
	consentHeaders(w)
	if err != nil {
		writeConsentPage(w, statusOf(err), consentPageData{Title: "This link can no longer be used", Message: pageMessage(r, err)})
		return
	}
	a.writeAnswer(w, r, http.StatusOK, token, ans)
}

func (a *privadoAPI) consent(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	html := wantsHTML(r)
	var choice string
	if html {
		r.Body = http.MaxBytesReader(w, r.Body, maxUsersBody)
		if err := r.ParseForm(); err != nil {
			consentHeaders(w)
			writeConsentPage(w, http.StatusBadRequest, consentPageData{Title: "Something is wrong with the form", Message: "Open the link from the mail again."})
			return
		}
		choice = r.PostForm.Get("consent")
	} else {
		var body ConsentBody
		if err := readStrict(w, r, &body); err != nil {
			noStore(w)
			fail(w, r, err)
			return
		}
		choice = body.Consent
	}
	var ans ConsentAnswer
	var err error
	switch choice {
	case "yes", "no":
		ans, err = a.p.Consent(r.Context(), token, choice == "yes")
	default:
		err = agent.Errorf(agent.CodeMsg, "consent: must be \"yes\" or \"no\"")
	}
	if !html {
		noStore(w)
		if err == nil && ans.Wallet != nil {
			ans.Wallet.QRPNG = a.qrData(ans.Wallet.DeepLink)
		}
		respond(w, r, http.StatusOK, ans, err)
		return
	}
	consentHeaders(w)
	if err != nil {
		title := "This link can no longer be used"
		if agent.HasCode(err, agent.CodeConflict) {
			title = "You have decided already"
		}
		writeConsentPage(w, statusOf(err), consentPageData{Title: title, Message: pageMessage(r, err)})
		return
	}
	a.writeAnswer(w, r, http.StatusOK, token, ans)
}

// qrData is the QR code of link as a data: URI ("" when it cannot be made).
func (a *privadoAPI) qrData(link string) string {
	png, err := a.p.QRCode(link)
	if err != nil {
		return ""
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
}

// writeAnswer renders the consent page for the interaction's state.
func (a *privadoAPI) writeAnswer(w http.ResponseWriter, r *http.Request, status int, token string, ans ConsentAnswer) {
	in := ans.Interaction
	until := in.ConsentExpires.UTC().Format(time.RFC1123)
	d := consentPageData{Exchange: in.VASPName, What: in.What, Challenge: in.Challenge, State: in.State}
	switch {
	case !ans.Decided && in.State == "ProofRequest":
		d.Title = in.VASPName + " asks for a proof"
		d.Message = fmt.Sprintf("%s asks for a zero-knowledge proof %s. It reveals nothing else about you and is bound to the number %d that %s chose. You can decide until %s.",
			in.VASPName, in.What, in.Challenge, in.VASPName, until)
		d.Token = token
	case ans.Wallet != nil:
		d.Title = "Thank you: now answer with your wallet"
		d.Message = fmt.Sprintf("You gave consent. Scan this code with your identity wallet, or open the link on this phone, before %s. Your wallet makes the proof and %s receives it.",
			ans.Wallet.Expires.UTC().Format(time.RFC1123), in.VASPName)
		d.DeepLink, d.UniversalLink, d.QR = template.URL(ans.Wallet.DeepLink), ans.Wallet.UniversalLink, template.URL(a.qrData(ans.Wallet.DeepLink))
	case in.State == "NotGivenConsent":
		d.Title = "You refused"
		d.Message = in.VASPName + " is told that you did not give consent. Nothing about you is shared."
	case in.State == "ProofShared":
		d.Title = "Your proof was shared"
		d.Message = fmt.Sprintf("Your wallet's %s proof was verified and sent to %s.", proofWords(in.ProofKind), in.VASPName)
	case in.State == "Expired":
		d.Title = "This request has expired"
		d.Message = "Nothing was shared. " + in.VASPName + " may ask again."
	default:
		d.Title = "This request is " + in.State
		d.Message = "Nothing more can be done with this link."
	}
	writeConsentPage(w, status, d)
}

func proofWords(kind string) string {
	if kind == "sig" {
		return "signature-based"
	}
	return "full"
}

// consentHeaders are pageHeaders with images from data: URIs (the QR
// code) allowed.
func consentHeaders(w http.ResponseWriter) {
	pageHeaders(w)
	w.Header().Set("Content-Security-Policy", "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
}

type consentPageData struct {
	Title, Message string
	Exchange, What string
	Challenge      uint32
	State          string
	Token          string
	DeepLink, QR   template.URL
	UniversalLink  string
}

var consentTemplate = template.Must(template.New("consent").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:sans-serif;max-width:36em;margin:2em auto;padding:0 1em;line-height:1.4}
button{font-size:1.1em;padding:.6em 1.4em;margin:.3em .5em .3em 0}img{width:100%;max-width:320px;image-rendering:pixelated}</style>
</head><body>
<h1 id="title">{{.Title}}</h1>
<p id="message">{{.Message}}</p>
{{if .Token}}<form method="post" action="?token={{.Token}}">
<button type="submit" name="consent" value="yes" id="yes">Give consent</button>
<button type="submit" name="consent" value="no" id="no">Refuse</button>
</form>{{end}}
{{if .DeepLink}}{{if .QR}}<p><img id="qr" alt="QR code of the request for your wallet" src="{{.QR}}"></p>{{end}}
<p><a id="deeplink" href="{{.DeepLink}}">Open in your wallet app</a> · <a id="universallink" href="{{.UniversalLink}}">Open in the web wallet</a></p>{{end}}
</body></html>
`))

func writeConsentPage(w http.ResponseWriter, status int, d consentPageData) {
	w.WriteHeader(status)
	consentTemplate.Execute(w, d)
}

// userPage is the user's interactions as an HTML page (a browser opening
// the mailed link).
func (a *privadoAPI) userPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	page, err := parsePage(r)
	var items []PrivadoInteraction
	if err == nil {
		items, err = a.p.UserInteractions(r.Context(), q.Get("token"), q.Get("vasp_id"), page.After, page.Limit)
	}
	consentHeaders(w)
	if err != nil {
		writeConsentPage(w, statusOf(err), consentPageData{Title: "This link can no longer be used", Message: pageMessage(r, err)})
		return
	}
	w.WriteHeader(http.StatusOK)
	interactionsTemplate.Execute(w, items)
}

var interactionsTemplate = template.Must(template.New("interactions").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your proof requests</title>
<style>body{font-family:sans-serif;max-width:48em;margin:2em auto;padding:0 1em;line-height:1.4}li{margin-bottom:1em}</style>
</head><body>
<h1 id="title">Your proof requests</h1>
{{if .}}<ul id="interactions">{{range .}}
<li><b>{{.VASPName}}</b> asked on {{.Created.UTC.Format "2006-01-02 15:04 UTC"}} for a proof {{.What}} (number {{.Challenge}}):
<span class="state">{{.State}}</span>{{if .ProofKind}} ({{.ProofKind}} proof){{end}}, last change {{.Updated.UTC.Format "2006-01-02 15:04 UTC"}}.</li>{{end}}
</ul>{{else}}<p id="message">No proof request was made about you.</p>{{end}}
</body></html>
`))

func (a *privadoAPI) createExchange(w http.ResponseWriter, r *http.Request) {
	var req CreateExchangeRequest
	if err := readStrict(w, r, &req); err != nil {
		fail(w, r, err)
		return
	}
	v, err := a.admin.CreateExchange(r.Context(), req)
	noStore(w)
	respond(w, r, http.StatusCreated, v, err)
}

func (a *privadoAPI) listExchanges(w http.ResponseWriter, r *http.Request) {
	list(w, r, "exchanges", func(v PrivadoExchange) string { return v.ID }, a.admin.Exchanges)
}

func (a *privadoAPI) getExchange(w http.ResponseWriter, r *http.Request) {
	v, err := a.admin.Exchange(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "exchange"))
}

func (a *privadoAPI) rotate(w http.ResponseWriter, r *http.Request) {
	v, err := a.admin.RotateExchangeKeys(r.Context(), r.PathValue("id"))
	noStore(w)
	respond(w, r, http.StatusOK, v, notFound(err, "exchange"))
}

func (a *privadoAPI) disable(w http.ResponseWriter, r *http.Request) {
	v, err := a.admin.DisableExchange(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "exchange"))
}

func (a *privadoAPI) listInteractions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	list(w, r, "interactions", func(v PrivadoInteraction) string { return v.ID },
		func(ctx context.Context, after string, limit int) ([]PrivadoInteraction, error) {
			return a.admin.Interactions(ctx, q.Get("vasp_id"), q.Get("user_id"), q.Get("state"), after, limit)
		})
}

func (a *privadoAPI) getInteraction(w http.ResponseWriter, r *http.Request) {
	v, err := a.admin.Interaction(r.Context(), r.PathValue("id"))
	respond(w, r, http.StatusOK, v, notFound(err, "interaction"))
}

// PrivadoDisabled is the feature of an agent without the proof-request
// service: its admin routes say so.
func PrivadoDisabled() Feature {
	return FeatureFunc(func(r *Routes) {
		r.Disabled("/admin/privado", "the proof-request service is off (privado.enabled; it needs users and iden3)")
	})
}

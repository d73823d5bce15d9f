package hostile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"

	"levee/web"
)

// Credential is one printed sign-in of the demo city.
type Credential struct{ Role, Name, Password, Token string }

// Credentials are the demo city's sign-ins as cmd/levee/demo.go prints them
// and saves them in <data>/demo-credentials.txt.
type Credentials struct {
	Accounts         []Credential
	ResidentPassword string   // the jury residents north-1 … harbour-6 share it
	DelegatePassword string   // the neighbour delegates share it
	Delegates        []string // their names
	Jurors           []string // seated on the demo city's case
}

var (
	residentsRE = regexp.MustCompile(`Residents for juries: .*all with password (\S+)`)
	delegatesRE = regexp.MustCompile(`Neighbour delegates: (.*), password (\S+)`)
	jurorsRE    = regexp.MustCompile(`Jury duty: case \d+ .*; jurors (.*)`)
)

// ParseCredentials reads the demo city's sign-ins.
func ParseCredentials(text string) (Credentials, error) {
	var c Credentials
	for _, line := range strings.Split(text, "\n") {
		if m := residentsRE.FindStringSubmatch(line); m != nil {
			c.ResidentPassword = m[1]
			continue
		}
		if m := delegatesRE.FindStringSubmatch(line); m != nil {
			c.Delegates, c.DelegatePassword = strings.Split(m[1], ", "), m[2]
			continue
		}
		if m := jurorsRE.FindStringSubmatch(line); m != nil {
			c.Jurors = strings.Split(strings.TrimSpace(m[1]), ", ")
			continue
		}
		if f := strings.Fields(line); len(f) == 4 && strings.HasPrefix(f[3], "lv_") {
			c.Accounts = append(c.Accounts, Credential{Role: f[0], Name: f[1], Password: f[2], Token: f[3]})
		}
	}
	if len(c.Accounts) == 0 {
		return c, fmt.Errorf("parse demo sign-ins: no account with an API token in %d bytes", len(text))
	}
	return c, nil
}

// SignInDemo reads the demo city's sign-ins from the file `levee serve
// --demo` saved (<data>/demo-credentials.txt) and signs in with them.
func SignInDemo(ctx context.Context, hc *http.Client, base, credentialsFile, adminToken string) (ps []Principal, revoked string, err error) {
	text, err := os.ReadFile(credentialsFile)
	if err != nil {
		return nil, "", fmt.Errorf("the demo city's sign-ins: %w", err)
	}
	creds, err := ParseCredentials(string(text))
	if err != nil {
		return nil, "", err
	}
	return SignIn(ctx, hc, base, creds, adminToken)
}

// SignIn turns the demo city's sign-ins into principals: the admin, every
// printed account by its token, a few seated jurors and a delegate (who have
// only passwords: each signs in once and makes itself an API token), and
// alice again through a browser session with its CSRF token. It also
// returns a revoked token of alice's. It signs in at most eight times, under
// the login limit of ten per address.
func SignIn(ctx context.Context, hc *http.Client, base string, creds Credentials, adminToken string) (ps []Principal, revoked string, err error) {
	ps = append(ps, Principal{Role: "admin", Name: "admin", Token: adminToken})
	var alice string
	for _, a := range creds.Accounts {
		ps = append(ps, Principal{Role: a.Role, Name: a.Name, Token: a.Token})
		if a.Name == "alice" {
			alice = a.Token
		}
	}
	byPassword := func(role, name, password string) error {
		s, err := login(ctx, hc, base, map[string]string{"name": name, "password": password})
		if err != nil {
			return err
		}
		var tok struct {
			Token string `json:"token"`
		}
		if err := call(ctx, hc, base, "POST", "/api/v1/me/tokens", s, `{"label":"hostile"}`, &tok); err != nil {
			return fmt.Errorf("token for %s: %w", name, err)
		}
		ps = append(ps, Principal{Role: role, Name: name, Token: tok.Token})
		return nil
	}
	// Three seated jurors who sign in with the residents' password. A jury
	// may also seat an account the demo did not make (the benchmark's own
	// traders, in the same database), whose password nobody printed: such a
	// juror is passed over, within six tries.
	seated, tries := 0, 0
	for _, j := range creds.Jurors {
		if seated == 3 || tries == 6 {
			break
		}
		tries++
		err := byPassword("juror", j, creds.ResidentPassword)
		if errors.Is(err, errSignInRefused) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		seated++
	}
	if len(creds.Jurors) > 0 && seated == 0 {
		return nil, "", fmt.Errorf("no seated juror of %v signs in with the residents' password", creds.Jurors)
	}
	if len(creds.Delegates) > 0 {
		if err := byPassword("delegate", creds.Delegates[0], creds.DelegatePassword); err != nil {
			return nil, "", err
		}
	}
	if alice == "" {
		return ps, "", nil
	}
	s, err := login(ctx, hc, base, map[string]string{"token": alice})
	if err != nil {
		return nil, "", err
	}
	s.Role, s.Name = "resident", "alice (browser session)"
	ps = append(ps, s)
	bearer := Principal{Token: alice}
	var tok struct{ ID, Token string }
	if err := call(ctx, hc, base, "POST", "/api/v1/me/tokens", bearer, `{"label":"to be revoked"}`, &tok); err != nil {
		return nil, "", fmt.Errorf("token to revoke: %w", err)
	}
	if err := call(ctx, hc, base, "DELETE", "/api/v1/me/tokens/"+tok.ID, bearer, "", nil); err != nil {
		return nil, "", fmt.Errorf("revoke a token: %w", err)
	}
	return ps, tok.Token, nil
}

// errSignInRefused is a sign-in answered 401: the name or password is wrong.
var errSignInRefused = errors.New("refused (401)")

// login opens a browser session.
func login(ctx context.Context, hc *http.Client, base string, body map[string]string) (Principal, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/v1/session", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Principal{}, fmt.Errorf("sign in %s: %w", body["name"], err)
	}
	defer resp.Body.Close()
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	json.NewDecoder(resp.Body).Decode(&out)
	p := Principal{CSRF: out.CSRF}
	for _, c := range resp.Cookies() {
		if c.Name == web.SessionCookie {
			p.Session = c.Value
		}
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return p, fmt.Errorf("sign in %s: %w", body["name"], errSignInRefused)
	}
	if resp.StatusCode != http.StatusCreated || p.Session == "" {
		return p, fmt.Errorf("sign in %s: status %d", body["name"], resp.StatusCode)
	}
	return p, nil
}

// call sends one well-formed request as p and decodes a 2xx answer into out.
func call(ctx context.Context, hc *http.Client, base, method, path string, p Principal, body string, out any) error {
	req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	p.authorize(req, true)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

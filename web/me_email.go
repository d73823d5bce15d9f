package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v5"

	"levee"
	"levee/accounts"
)

// Emails is what the web layer needs for people's email addresses
// (accounts.Service).
type Emails interface {
	Email(ctx context.Context, account int64) (accounts.EmailSettings, error)
	SetEmail(ctx context.Context, account int64, address string) (accounts.EmailSettings, string, error)
	ConfirmEmail(ctx context.Context, token string) (accounts.EmailSettings, error)
	SetEmailCategories(ctx context.Context, account int64, categories []string) (accounts.EmailSettings, error)
	RemoveEmail(ctx context.Context, account int64) error
}

// Mail sends confirmation links and says whether mail leaves the node
// (mail.Mailer).
type Mail interface {
	SendConfirmation(ctx context.Context, to, token string) error
	Delivering() bool
}

var errNoEmail = levee.Errorf(levee.ENOTFOUND, "email is not offered by this node")

// emailView is an account's email settings as the API shows them.
type emailView struct {
	accounts.EmailSettings
	// Delivering is false on a node without LEVEE_SMTP_URL: notifications
	// are kept in the app.
	Delivering bool `json:"delivering"`
}

func (s *Server) emailView(e accounts.EmailSettings) emailView {
	return emailView{EmailSettings: e, Delivering: s.deps.Mail != nil && s.deps.Mail.Delivering()}
}

func (s *Server) getEmail(c *echo.Context) error {
	if s.deps.Emails == nil {
		return errNoEmail
	}
	e, err := s.deps.Emails.Email(c.Request().Context(), principal(c).AccountID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.emailView(e))
}

// setEmail sets the caller's address, unconfirmed, and mails the link that
// confirms it → 202.
func (s *Server) setEmail(c *echo.Context) error {
	if s.deps.Emails == nil || s.deps.Mail == nil {
		return errNoEmail
	}
	var req struct {
		Address string `json:"address"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, token, err := s.deps.Emails.SetEmail(ctx, principal(c).AccountID, req.Address)
	if err != nil {
		return err
	}
	if err := s.deps.Mail.SendConfirmation(ctx, e.Address, token); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, s.emailView(e))
}

// removeEmail forgets the caller's address: no more mail.
func (s *Server) removeEmail(c *echo.Context) error {
	if s.deps.Emails == nil {
		return errNoEmail
	}
	if err := s.deps.Emails.RemoveEmail(c.Request().Context(), principal(c).AccountID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// setEmailCategories chooses what the caller is mailed about.
func (s *Server) setEmailCategories(c *echo.Context) error {
	if s.deps.Emails == nil {
		return errNoEmail
	}
	var req struct {
		Categories []string `json:"categories"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := s.deps.Emails.SetEmailCategories(c.Request().Context(), principal(c).AccountID, req.Categories)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.emailView(e))
}

// confirmEmail confirms an address by its link's token; no sign-in needed,
// the token is the proof.
func (s *Server) confirmEmail(c *echo.Context) error {
	if s.deps.Emails == nil {
		return errNoEmail
	}
	var req struct {
		Token string `json:"token"`
	}
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	e, err := s.deps.Emails.ConfirmEmail(c.Request().Context(), req.Token)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"address": e.Address, "confirmed": e.Confirmed})
}

// confirmPage is the data of /email/confirm.
type confirmPage struct{ Address string }

// pageConfirmEmail is where a confirmation link lands: opening it confirms
// the address (once).
func (s *Server) pageConfirmEmail(c *echo.Context) error {
	if s.deps.Emails == nil {
		return s.renderError(c, errNoEmail)
	}
	e, err := s.deps.Emails.ConfirmEmail(c.Request().Context(), c.QueryParam("token"))
	if err != nil {
		return s.renderError(c, err)
	}
	p := newPage(c, "Email confirmed", "")
	p.Data = &confirmPage{Address: e.Address}
	return s.render(c, http.StatusOK, "email_confirm", p)
}

// emailCategory is one checkbox of the email form.
type emailCategory struct {
	Value, Label string
	Chosen       bool
}

// emailForm is the data of the email form on the portfolio page.
type emailForm struct {
	accounts.EmailSettings
	Delivering bool
	Categories []emailCategory
}

var categoryLabels = map[string]string{
	accounts.MailSeats:       "Jury seats and deadlines",
	accounts.MailVerdicts:    "Verdicts",
	accounts.MailQuorum:      "Quorum requests and answers",
	accounts.MailEmergencies: "Emergency declarations and acts",
	accounts.MailPayments:    "Payments to me, awards and milestones due",
}

// emailFormFor reads the caller's settings for the form; nil when the node
// offers no email.
func (s *Server) emailFormFor(ctx context.Context, account int64) (*emailForm, error) {
	if s.deps.Emails == nil || s.deps.Mail == nil {
		return nil, nil
	}
	e, err := s.deps.Emails.Email(ctx, account)
	if err != nil {
		return nil, err
	}
	f := &emailForm{EmailSettings: e, Delivering: s.deps.Mail.Delivering()}
	for _, c := range accounts.MailCategories {
		f.Categories = append(f.Categories, emailCategory{Value: c, Label: categoryLabels[c], Chosen: e.Wants(c)})
	}
	return f, nil
}

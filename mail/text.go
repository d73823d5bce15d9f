package mail

import (
	"fmt"
	"strings"
	"time"

	"levee/accounts"
)

// kinds maps each notification kind to its category (accounts.Mail*), the
// subject of its mail and what the reader is to do, if anything. A kind not
// listed is mailed under "seats" with a generic subject.
var kinds = map[string]struct{ category, subject, todo string }{
	"case_opened":   {accounts.MailSeats, "A case you are party to is open", "Add your evidence on the case page"},
	"juror_seated":  {accounts.MailSeats, "You were drawn for a jury", "Read the case and seal (commit) your vote on the case page"},
	"commit_open":   {accounts.MailSeats, "Jury: seal your vote", "Seal (commit) your vote on the case page"},
	"reveal_open":   {accounts.MailSeats, "Jury: reveal your vote", "Reveal your vote and its salt on the case page, or your seat is not paid"},
	"evidence":      {accounts.MailSeats, "Jury: new evidence", "Read the new evidence before you vote"},
	"round_redrawn": {accounts.MailSeats, "Jury: a new round was drawn", "Seal (commit) your vote on the case page"},
	"appealed":      {accounts.MailVerdicts, "A verdict was appealed", ""},
	"verdict":       {accounts.MailVerdicts, "A jury reached its verdict", "Appeal on the case page if you think the verdict is wrong"},
	"final":         {accounts.MailVerdicts, "A verdict is final", ""},
	"settled":       {accounts.MailVerdicts, "A case is settled", ""},

	"quorum_request": {accounts.MailQuorum, "The quorum asks your vote", "Approve or reject the proposal on the quorum page"},
	"quorum_decided": {accounts.MailQuorum, "The quorum answered your proposal", ""},

	"emergency_declared": {accounts.MailEmergencies, "An emergency is declared", ""},
	"emergency_act":      {accounts.MailEmergencies, "An act under emergency powers", ""},
	"emergency_renewed":  {accounts.MailEmergencies, "An emergency is renewed", ""},
	"emergency_ended":    {accounts.MailEmergencies, "An emergency has ended", ""},

	"payment":       {accounts.MailPayments, "A payment to you", ""},
	"award_won":     {accounts.MailPayments, "Your bid won", "Do the work and claim each milestone on the contract page"},
	"award_lost":    {accounts.MailPayments, "Your bid did not win", ""},
	"milestone_due": {accounts.MailPayments, "A milestone is due", "Claim the milestone with its evidence on the contract page"},
}

// Category is the mail category of a notification kind.
func Category(kind string) string {
	if k, ok := kinds[kind]; ok {
		return k.category
	}
	return accounts.MailSeats
}

var categoryNames = map[string]string{
	accounts.MailSeats:       "jury seats and deadlines",
	accounts.MailVerdicts:    "verdicts",
	accounts.MailQuorum:      "quorum requests and answers",
	accounts.MailEmergencies: "emergencies and acts under them",
	accounts.MailPayments:    "payments, awards and milestones due",
}

// CategoryName is how forms and mails name a category.
func CategoryName(c string) string { return categoryNames[c] }

// note is one notification as the worker mails it.
type note struct {
	ID       int64      `db:"id"`
	Name     string     `db:"name"`
	Kind     string     `db:"kind"`
	Message  string     `db:"message"`
	Deadline *time.Time `db:"deadline"`
	CaseID   *int64     `db:"case_id"`
	Link     *string    `db:"link"`
}

// link is the path of the page the notification is about.
func (n note) link() string {
	switch {
	case n.Link != nil && strings.HasPrefix(*n.Link, "/"):
		return *n.Link
	case n.CaseID != nil:
		return fmt.Sprintf("/cases/%d", *n.CaseID)
	}
	return "/jury"
}

func when(t time.Time) string { return t.UTC().Format("Mon 2 Jan 2006 15:04 UTC") }

// compose writes a notification's mail: plain text saying what happened,
// what to do and by when, and where.
func compose(base string, n note) (subject, body string) {
	k, ok := kinds[n.Kind]
	if !ok {
		k.subject = "Levee: " + strings.ReplaceAll(n.Kind, "_", " ")
		k.category = accounts.MailSeats
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n%s\n\n", n.Name, n.Message)
	switch {
	case k.todo != "" && n.Deadline != nil:
		fmt.Fprintf(&b, "What to do: %s by %s.\n", k.todo, when(*n.Deadline))
	case k.todo != "":
		fmt.Fprintf(&b, "What to do: %s.\n", k.todo)
	case n.Deadline != nil:
		fmt.Fprintf(&b, "Until: %s.\n", when(*n.Deadline))
	default:
		b.WriteString("Nothing to do; this is for your information.\n")
	}
	fmt.Fprintf(&b, "Open: %s%s\n\n-- \nYou get this because you asked Levee for mail about %s.\nChoose what you are told about, or stop: %s/portfolio#email\n",
		base, n.link(), categoryNames[k.category], base)
	return "Levee: " + k.subject, b.String()
}

// confirmation writes the mail that confirms an address.
func confirmation(base, token string) (subject, body string) {
	return "Levee: confirm your email address", fmt.Sprintf(
		"Someone, probably you, asked Levee to send its notifications to this address.\n\n"+
			"To confirm, open this link within %d hours (it works once):\n%s/email/confirm?token=%s\n\n"+
			"If it was not you, ignore this mail: nothing is sent to an unconfirmed address.\n",
		int(accounts.EmailConfirmTTL/time.Hour), base, token)
}

// passwordReset writes the mail that carries a password reset link.
func passwordReset(base, name, token string, expires time.Time) (subject, body string) {
	return "Levee: choose a new password", fmt.Sprintf(
		"Hello %s,\n\nAn admin of Levee reset your password, as you asked or because it may have been stolen. "+
			"Your old password no longer works and you were signed out everywhere.\n\n"+
			"What to do: choose a new password by %s, at this link (it works once):\n%s/password/reset?token=%s\n\n"+
			"If you did not ask for this, tell the admin: the reset is in the public audit log.\n",
		name, when(expires), base, token)
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"levee"
	"levee/accounts"
)

const demoSeededKey = "demo_seeded"

// demoAccount is one sign-in of the demo city.
type demoAccount struct {
	role, name, kind, district string
	roles                      []string
	credit                     string
	memberOf                   string
}

var demoAccounts = []demoAccount{
	{role: "resident", name: "alice", roles: []string{accounts.RoleResident}, district: "north", credit: "1000"},
	{role: "resident", name: "bob", roles: []string{accounts.RoleResident}, district: "south", credit: "1000"},
	{role: "resident", name: "carol", roles: []string{accounts.RoleResident}, district: "harbour", credit: "1000"},
	{role: "contractor", name: "dykeworks", roles: []string{accounts.RoleContractor}, kind: accounts.KindOrganisation, credit: "500"},
	{role: "contractor", name: "dave", roles: []string{accounts.RoleContractor}, kind: accounts.KindPerson, memberOf: "dykeworks"},
	{role: "contractor", name: "rivalbuild", roles: []string{accounts.RoleContractor}, kind: accounts.KindOrganisation, credit: "500"},
	{role: "treasurer", name: "tess", roles: []string{accounts.RoleTreasurer}},
	{role: "steward", name: "sam", roles: []string{accounts.RoleSteward, accounts.RoleResident}, district: "harbour", credit: "1000"},
}

// credentialsPath is where the demo sign-ins are kept (mode 0600), since
// tokens and passwords are stored only hashed and cannot be shown again.
func (m *Main) credentialsPath() string {
	return filepath.Join(m.Config.DataDir, "demo-credentials.txt")
}

// SeedDemo seeds the demo city once (districts, a funded treasury, one
// account per role) and prints its sign-ins; later calls print them again.
func (m *Main) SeedDemo(ctx context.Context) error {
	_, seeded, err := m.Accounts.Setting(ctx, demoSeededKey)
	if err != nil {
		return err
	}
	if seeded {
		b, err := os.ReadFile(m.credentialsPath())
		if errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(m.stdout, "The demo city is seeded, but its sign-ins file %s is gone.\n", m.credentialsPath())
			return nil
		} else if err != nil {
			return err
		}
		m.stdout.Write(b)
		return nil
	}
	begin := time.Now()
	for _, d := range demoDistricts {
		if _, err := m.Accounts.CreateDistrict(ctx, 0, d); err != nil && levee.ErrorCode(err) != levee.ECONFLICT {
			return fmt.Errorf("seed district %s: %w", d, err)
		}
	}
	if _, err := m.Accounts.IssueToTreasury(ctx, 0, levee.Units(1_000_000), "demo city opening balance"); err != nil {
		return fmt.Errorf("seed treasury: %w", err)
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\nDemo city sign-ins (web UI: name + password; API: Authorization: Bearer <token>)\n")
	tw := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  ROLE\tNAME\tPASSWORD\tAPI TOKEN")
	if m.Config.AdminToken != "" {
		fmt.Fprintln(tw, "  admin\tadmin\t-\t(LEVEE_ADMIN_TOKEN)")
	} else if m.generatedAdminToken != "" {
		fmt.Fprintf(tw, "  admin\tadmin\t-\t%s\n", m.generatedAdminToken)
	}
	ids, passwords := map[string]int64{}, map[int64]string{}
	for _, d := range demoAccounts {
		password := "demo-" + randomHex(6)
		credit, _ := levee.ParseMicros(orZero(d.credit))
		a, token, err := m.Accounts.CreateAccount(ctx, 0, accounts.NewAccount{
			Name: d.name, Kind: d.kind, Roles: d.roles, District: d.district, Credit: credit,
		})
		if err != nil {
			return fmt.Errorf("seed account %s: %w", d.name, err)
		}
		ids[d.name] = a.ID
		passwords[a.ID] = password
		if d.memberOf != "" {
			if err := m.Accounts.AddMember(ctx, 0, ids[d.memberOf], a.ID); err != nil {
				return fmt.Errorf("seed member %s: %w", d.name, err)
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.role, d.name, password, token)
	}
	tw.Flush()
	m.logger.Debug("demo accounts", slog.Duration("took", time.Since(begin)))
	if err := m.seedDemoCity(ctx, &sb, ids, passwords); err != nil {
		return err
	}
	m.logger.Debug("demo residents", slog.Duration("took", time.Since(begin)))
	// Hashing the passwords is CPU work, the story mostly waits on the
	// database: they run side by side.
	hashed := make(chan error, 1)
	go func() { hashed <- m.setPasswords(ctx, passwords) }()
	story, err := m.seedDemoStory(ctx, ids)
	if perr := <-hashed; err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	m.logger.Debug("demo story", slog.Duration("took", time.Since(begin)))
	story.writeStart(&sb, m.Config.AdminToken != "" || m.generatedAdminToken != "")
	fmt.Fprintf(&sb, "\nTry: curl -H 'Authorization: Bearer <token>' http://%s/api/v1/me\n\n", displayAddr(m.Config.Addr))
	if err := os.MkdirAll(m.Config.DataDir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(m.credentialsPath(), []byte(sb.String()), 0o600); err != nil {
		return fmt.Errorf("save demo sign-ins: %w", err)
	}
	if err := m.Accounts.SetSetting(ctx, demoSeededKey, "true"); err != nil {
		return err
	}
	fmt.Fprint(m.stdout, sb.String())
	return nil
}

func displayAddr(addr string) string {
	if addr == "" {
		return "127.0.0.1:8080"
	}
	return addr
}

func orZero(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

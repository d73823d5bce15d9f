package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"levee"
	"levee/accounts"
)

// The rest of the demo city: residents enough to draw juries from, three
// neighbour nodes (whose keys the demo holds to play their part, see
// demo_neighbours.go), a founded charter, and budget lines from a finished
// quadratic funding round.

var demoDistricts = []string{"north", "south", "harbour"}

// demoNeighbours are the neighbour nodes of the demo charter.
var demoNeighbours = []string{"Delta City", "Estuary Commons", "Ridge Town"}

// jurorsPerDistrict residents are added to each district so that a jury
// can be drawn without the named demo accounts.
const jurorsPerDistrict = 6

// demoJurors lists the extra residents' names.
func demoJurors() []string {
	var out []string
	for _, d := range demoDistricts {
		for i := 1; i <= jurorsPerDistrict; i++ {
			out = append(out, fmt.Sprintf("%s-%d", d, i))
		}
	}
	return out
}

// seedDemoCity adds the jurors, and writes their sign-ins to
// w. Their accounts are opened in order (so their ids are the same on every
// run); passwords are set afterwards, together (setPasswords).
func (m *Main) seedDemoCity(ctx context.Context, w io.Writer, ids map[string]int64, passwords map[int64]string) error {
	password := "demo-" + randomHex(6)
	for _, name := range demoJurors() {
		district := name[:len(name)-2]
		a, _, err := m.Accounts.CreateAccount(ctx, 0, accounts.NewAccount{Name: name, Roles: []string{accounts.RoleResident},
			District: district, Credit: levee.Units(300)})
		if err != nil {
			return fmt.Errorf("seed resident %s: %w", name, err)
		}
		ids[name] = a.ID
		passwords[a.ID] = password
	}
	fmt.Fprintf(w, "  Residents for juries: north-1..%d, south-1..%d, harbour-1..%d, all with password %s\n",
		jurorsPerDistrict, jurorsPerDistrict, jurorsPerDistrict, password)
	return nil
}

// setPasswords sets the demo accounts' passwords. Hashing them (argon2id)
// is most of the seeding's CPU: each distinct password is hashed once (the
// residents share one), the distinct ones as many at a time
// as there are CPUs.
func (m *Main) setPasswords(ctx context.Context, passwords map[int64]string) error {
	byPassword := map[string][]int64{}
	for id, pw := range passwords {
		byPassword[pw] = append(byPassword[pw], id)
	}
	errs := make(chan error, len(passwords))
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for pw, ids := range byPassword {
		wg.Go(func() {
			sem <- struct{}{}
			hash := accounts.HashPassword(pw)
			<-sem
			for _, id := range ids {
				errs <- m.Accounts.SetPasswordHash(ctx, id, hash)
			}
		})
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		return fmt.Errorf("seed passwords: %w", err)
	}
	return nil
}

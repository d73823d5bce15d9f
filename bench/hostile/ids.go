package hostile

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"levee/web"
)

const sessionCookie = web.SessionCookie

// state is what the workers share: the config, the callers and the ids
// found so far.
type state struct {
	cfg        Config
	hc         *http.Client
	principals []Principal // anonymous included
	byRole     map[string][]Principal

	mu    sync.Mutex
	pools map[string][]string // ids by collection ("markets", "bids", …)
	// ownTokens are the ids of the callers' own API tokens: DELETE
	// /me/tokens/:id never aims at them, or the run would sign itself out.
	ownTokens map[int64]bool
}

func newState(cfg Config, hc *http.Client) *state {
	st := &state{cfg: cfg, hc: hc, byRole: map[string][]Principal{}, pools: map[string][]string{}, ownTokens: map[int64]bool{}}
	st.principals = append(append([]Principal{}, cfg.Principals...), Principal{})
	for _, p := range st.principals {
		st.byRole[p.Role] = append(st.byRole[p.Role], p)
	}
	return st
}

// poolOf names the collection a path parameter's ids come from, by the
// path segment before it.
func poolOf(segment string) string {
	switch segment {
	case "stewards", "jurors":
		return "accounts"
	case "contractors":
		return "organisations"
	case "releases", "records":
		return "tenders"
	case "attachments":
		return "bid-attachments"
	case "dispute":
		return "cases"
	}
	return segment
}

// id returns a real id of the collection, or a small number when none is
// known yet.
func (st *state) id(r *rand.Rand, pool string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	if ids := st.pools[pool]; len(ids) > 0 {
		return ids[r.IntN(len(ids))]
	}
	if pool == "organisations" && len(st.pools["accounts"]) > 0 {
		ids := st.pools["accounts"]
		return ids[r.IntN(len(ids))]
	}
	return strconv.Itoa(1 + r.IntN(5))
}

// newest returns the id the run saw last in the collection (the one it
// most likely just created), or any id when none is known.
func (st *state) newest(r *rand.Rand, pool string) string {
	st.mu.Lock()
	ids := st.pools[pool]
	st.mu.Unlock()
	if len(ids) == 0 {
		return st.id(r, pool)
	}
	best := ids[0]
	for _, id := range ids[1:] { // ids are serials: the highest is the newest
		if len(id) > len(best) || len(id) == len(best) && id > best {
			best = id
		}
	}
	return best
}

func (st *state) add(pool string, v any) {
	var id string
	switch v := v.(type) {
	case string:
		id = v
	case float64:
		id = strconv.FormatInt(int64(v), 10)
	default:
		return
	}
	if n, err := strconv.ParseInt(id, 10, 64); err != nil || n <= 0 {
		return
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	ids := st.pools[pool]
	for _, have := range ids {
		if have == id {
			return
		}
	}
	if len(ids) >= 200 {
		ids[rand.IntN(len(ids))] = id
		return
	}
	st.pools[pool] = append(ids, id)
}

// harvest keeps the ids in a 2xx answer: the "id" of what a POST to a
// collection created, and the ids in every list ({"markets":[{"id":…}]}).
func (st *state) harvest(rq *request, body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	segs := strings.Split(rq.route.Path, "/")
	last := segs[len(segs)-1]
	if obj, ok := v.(map[string]any); ok && rq.method == "POST" && !strings.HasPrefix(last, ":") {
		st.add(poolOf(last), obj["id"])
	}
	st.walk(poolOf(last), v, 0)
}

func (st *state) walk(pool string, v any, depth int) {
	if depth > 3 {
		return
	}
	switch v := v.(type) {
	case []any:
		for _, e := range v {
			if obj, ok := e.(map[string]any); ok {
				st.add(pool, obj["id"])
				st.walk(pool, obj, depth+1)
			}
		}
	case map[string]any:
		for k, e := range v {
			if list, ok := e.([]any); ok {
				st.walk(poolOf(strings.ReplaceAll(k, "_", "-")), list, depth+1)
			}
		}
	}
}

// discover reads who each caller is, their tokens, and every list the API
// has, for real ids to aim at.
func (st *state) discover(ctx context.Context) error {
	for _, p := range st.principals {
		if p.Role == "" {
			continue
		}
		var me struct{ ID, Kind string }
		if err := call(ctx, st.hc, st.cfg.BaseURL, "GET", "/api/v1/me", p, "", &me); err != nil {
			return fmt.Errorf("discover %s: %w", p.label(), err)
		}
		st.add("accounts", me.ID)
		if me.Kind == "organisation" {
			st.add("organisations", me.ID)
		}
		var toks struct {
			Tokens []struct{ ID string } `json:"tokens"`
		}
		if err := call(ctx, st.hc, st.cfg.BaseURL, "GET", "/api/v1/me/tokens", p, "", &toks); err != nil {
			return fmt.Errorf("discover %s's tokens: %w", p.label(), err)
		}
		for _, t := range toks.Tokens {
			n, _ := strconv.ParseInt(t.ID, 10, 64)
			st.ownTokens[n] = true
		}
	}
	admin := st.byRole["admin"]
	if len(admin) == 0 {
		return nil
	}
	for _, rt := range st.cfg.Routes {
		if rt.Method != "GET" || !strings.HasPrefix(rt.Path, "/api/v1/") || strings.Contains(rt.Path, ":") || rt.Path == "/api/v1/ws" {
			continue
		}
		rq := &request{method: "GET", route: rt, url: rt.Path}
		var v json.RawMessage
		if err := call(ctx, st.hc, st.cfg.BaseURL, "GET", rt.Path, admin[0], "", &v); err == nil {
			st.harvest(rq, v)
		}
	}
	// The lists under a known id: a tender's bids, a round's projects.
	for _, rt := range st.cfg.Routes {
		segs := strings.Split(rt.Path, "/")
		if rt.Method != "GET" || !strings.HasPrefix(rt.Path, "/api/v1/") || strings.Count(rt.Path, ":") != 1 || !strings.HasPrefix(segs[len(segs)-2], ":") && !strings.HasPrefix(segs[len(segs)-1], ":") {
			continue
		}
		st.mu.Lock()
		var ids []string
		for i, s := range segs {
			if strings.HasPrefix(s, ":") {
				ids = append([]string{}, st.pools[poolOf(segs[i-1])]...)
			}
		}
		st.mu.Unlock()
		for _, id := range ids[:min(5, len(ids))] {
			path := strings.Replace(rt.Path, segs[slicesIndexParam(segs)], id, 1)
			var v json.RawMessage
			if err := call(ctx, st.hc, st.cfg.BaseURL, "GET", path, admin[0], "", &v); err == nil {
				st.harvest(&request{method: "GET", route: rt, url: path}, v)
			}
		}
	}
	return nil
}

func slicesIndexParam(segs []string) int {
	for i, s := range segs {
		if strings.HasPrefix(s, ":") {
			return i
		}
	}
	return -1
}

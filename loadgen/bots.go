package loadgen

import "github.com/questline/questline/event"

// botStep is one scripted bot event.
type botStep struct {
	t       int64
	u       *user
	d       *device
	typ     event.Type
	quest   *quest
	durMs   int64
	drop    *drop
	country string // declared country, when it differs from the user's
	limited bool   // a claim beyond the burst's first two
	sid     string // session_id
}

// botScript is a bot session: a precomputed, time-ordered script (bot
// sessions are short, so the memory is bounded).
type botScript struct {
	steps []botStep
	i     int
}

func (s *botScript) step(g *gen, t int64) (int64, bool) {
	st := &s.steps[s.i]
	var e event.Event
	switch st.typ {
	case event.DropClaimed:
		e = g.claimEvent(st.u, st.drop, t, st.limited)
	default:
		e = g.newEvent(st.typ, t, st.u)
		e.QuestID = questID(st.quest)
		if st.drop != nil {
			e.DropID, e.CreatorID = st.drop.id, st.drop.creator
		}
		if st.durMs > 0 {
			e.DurationMs, e.Has = st.durMs, event.HasDurationMs
		}
	}
	if st.country != "" {
		e.Country = st.country
	}
	g.emitClient(st.d, st.sid, e)
	s.i++
	if s.i == len(s.steps) {
		for _, x := range s.steps {
			g.flush(x.d.buf, t)
		}
		return 0, false
	}
	return s.steps[s.i].t, true
}

func questID(q *quest) string {
	if q == nil {
		return ""
	}
	return q.id
}

// botScript builds the script of a bot session of kind k starting at t.
// Each kind is built to trip its SPEC §5 signal, the counts past their
// thresholds but near them (velocity, claim bursts, users per farm), as
// some humans come near thresholds without passing them
// (docs/loadgen.md, "Bots"; until session 14 every bot was far past its
// threshold and every human far from all of them).
func (g *gen) botScript(k botKind, t int64) *botScript {
	s := &botScript{}
	add := func(st botStep) { s.steps = append(s.steps, st) }
	q := func() *quest { return g.quests[g.rng.IntN(len(g.quests))] }
	switch k {
	case botImpossibleQuest:
		// Completes 4–8 quests in 5–30 s each (catalog minimums are 60–150 s).
		u := g.newBot(k, nil)
		for n := 4 + g.rng.IntN(5); n > 0; n-- {
			qq := q()
			add(botStep{t: t, u: u, d: u.devices[0], typ: event.QuestStarted, quest: qq})
			dur := g.between(5, 30)
			t += dur
			add(botStep{t: t, u: u, d: u.devices[0], typ: event.QuestCompleted, quest: qq, durMs: dur})
			t += g.between(3, 15)
		}
	case botVelocity:
		// 200–400 events at 2.8–3.6 a second (several per second on the
		// whole-second grid, the busy seconds 1–3 s apart, so the cadence
		// is not a metronome's): 167–214 in a minute on average, not far above
		// velocity's 120 (session 14; about 3.3 a second, every second,
		// before).
		u := g.newBot(k, nil)
		qq := q()
		step := 0.14 + 0.04*g.rng.Float64() // the chance of moving on after an event
		for i := 200 + g.rng.IntN(201); i > 0; i-- {
			typ := event.QuestStarted
			if i%2 == 0 {
				typ = event.QuestAbandoned
			}
			add(botStep{t: t, u: u, d: u.devices[0], typ: typ, quest: qq})
			if g.rng.Float64() < step {
				t += g.between(1, 3)
			}
		}
	case botMetronome:
		// 24–40 events with exactly constant gaps of 1 or 2 s: 20 or more
		// in some 1-min window. (Gaps near metronome's coefficient of
		// variation of 0.1 need a jitter finer than the model's time grid
		// of whole seconds, on which the expected values are exact:
		// docs/loadgen.md.)
		u := g.newBot(k, nil)
		gap := g.between(1, 2)
		qq := q()
		for i := 24 + g.rng.IntN(17); i > 0; i-- {
			typ := event.QuestStarted
			if i%2 == 0 {
				typ = event.QuestAbandoned
			}
			add(botStep{t: t, u: u, d: u.devices[0], typ: typ, quest: qq})
			t += gap
		}
	case botSharedDevice:
		// A device farm: 4–5 accounts on one device (shared_device is more
		// than 3; 6–12 before session 14), driven by a script that gives
		// each account a turn every 2 s exactly (30–40 turns: quest starts
		// and abandons). The device is the entity to find (shared device
		// and metronome); each account alone looks quiet.
		dev := g.newDevice(g.pick(countries))
		n := 4 + g.rng.IntN(2)
		users := make([]*user, n)
		quests := make([]*quest, n)
		for i := range users {
			users[i] = g.newBot(k, dev)
			quests[i] = q()
		}
		turns := make([]int, n)
		for i := 30 + g.rng.IntN(11); i > 0; i-- {
			j := i % n
			typ := event.QuestStarted
			if turns[j]%2 == 1 {
				typ = event.QuestAbandoned
			}
			turns[j]++
			add(botStep{t: t, u: users[j], d: dev, typ: typ, quest: quests[j]})
			t += 2 * sec
		}
	case botClaimBurst:
		// Waits for a live drop, views it, then fires 7–9 claims a second
		// apart (10–20 before session 14): the first two may be granted
		// (or refused as sold out, which claim_burst does not count), the
		// rest are rate limited: 5–9 that count, claim_burst being 5.
		d := g.liveDrop(t)
		if d == nil || d.end-t < 2*minute {
			d = g.nextDropAfter(t)
			t = d.start - d.start%sec + sec + g.between(0, 60)
		}
		u := g.newBot(k, nil)
		add(botStep{t: t, u: u, d: u.devices[0], typ: event.DropViewed, drop: d})
		for i := 0; i < 7+g.rng.IntN(3); i++ {
			t += sec
			add(botStep{t: t, u: u, d: u.devices[0], typ: event.DropClaimed, drop: d, limited: i >= 2})
		}
	case botGeoMismatch:
		// Declares countries its network (the edge) never shows, hopping
		// between them; otherwise it does ordinary quests.
		net := g.pick(countries)
		u := g.newBot(k, g.newDevice(net))
		var declared []string
		for _, c := range []string{"RU", "NG", "VN", "ID", "PK", "UA"} {
			if c != net {
				declared = append(declared, c)
			}
		}
		// Each event declares another country than the one before.
		prev := ""
		hop := func() string {
			c := g.pick(declared)
			for c == prev {
				c = g.pick(declared)
			}
			prev = c
			return c
		}
		for n := 1 + g.rng.IntN(2); n > 0; n-- {
			qq := q()
			add(botStep{t: t, u: u, d: u.devices[0], typ: event.QuestStarted, quest: qq, country: hop()})
			dur := g.between(190, 300)
			t += dur
			add(botStep{t: t, u: u, d: u.devices[0], typ: event.QuestCompleted, quest: qq, durMs: dur, country: hop()})
			t += g.between(5, 30)
		}
	}
	sids := map[*user]string{} // one app session per account
	for i := range s.steps {
		st := &s.steps[i]
		g.planted.botSteps[st.u.id]++
		if sids[st.u] == "" {
			sids[st.u] = g.newSessionID()
		}
		st.sid = sids[st.u]
	}
	return s
}

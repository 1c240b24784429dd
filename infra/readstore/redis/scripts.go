package redis

import (
	"strings"

	goredis "github.com/redis/go-redis/v9"
)

// Every read and every write is one Lua script, for two reasons. A script
// runs atomically, so a read sees one state of one generation (a page of
// the listing is never a mix of two commits, or of two versions around a
// promotion), and a commit checks the checkpoint and writes its views,
// indexes and new checkpoint as one step that no other client can split.
// And a script is one round trip, where resolving the active generation
// and then reading it would be two and racy.
//
// The keys of a projection share one hash tag ({prefix:name}), so that
// every key a script touches lives in one Redis Cluster slot. The scripts
// name the active-generation key in KEYS, which routes the call; the
// generation's own keys are derived from it inside the script, which
// Redis allows for keys of the same slot.
//
// Calling convention: KEYS[1] is the active-generation key; ARGV[1] is
// the projection's base key and ARGV[2] the generation the caller is bound
// to (0 for whichever is active). The rest is per script.

// prelude is prepended to every script.
const prelude = `
local base, want = ARGV[1], ARGV[2]

-- gen_prefix is the key prefix of the generation the call is bound to,
-- and its number; nil when there is none.
local function gen_prefix()
  local g = want
  if g == '0' then
    g = redis.call('GET', KEYS[1])
    if not g then return nil end
  end
  return base .. ':g' .. g .. ':', g
end

-- chunk is how many arguments one command gets at most: Lua's unpack
-- cannot spread many thousands.
local chunk = 1000

-- each runs cmd on key with the elements of list, chunk by chunk (an even
-- number per chunk, so that pairs stay whole).
local function each(cmd, key, list)
  for i = 1, #list, chunk do
    redis.call(cmd, key, unpack(list, i, math.min(i + chunk - 1, #list)))
  end
end

-- hmget reads the fields in list of hash key, chunk by chunk.
local function hmget(key, list)
  local out = {}
  for i = 1, #list, chunk do
    local j = math.min(i + chunk - 1, #list)
    local part = redis.call('HMGET', key, unpack(list, i, j))
    for k = 1, #part do out[i + k - 1] = part[k] end
  end
  return out
end
`

// commitPrelude is prepended to the commit scripts, after prelude and the
// projection's SUFFIXES (the keys of one generation). ARGV[3] is the
// checkpoint the commit expects, ARGV[4] the one it moves to, ARGV[5] the
// time to live of a staged generation, in milliseconds.
const commitPrelude = `
-- begin checks the checkpoint: it returns the generation's prefix and
-- number, or nil and the reply of a conflict: {0, stored checkpoint},
-- with '' when the generation is gone (promoted over, or discarded).
local function begin()
  local pre, g = gen_prefix()
  if not pre then return nil, {0, ''} end
  local cp = redis.call('GET', pre .. 'cp')
  if not cp then return nil, {0, ''} end
  if cp ~= ARGV[3] then return nil, {0, cp} end
  return pre, g
end

-- finish moves the checkpoint. A staged generation keeps a time to live,
-- renewed by every commit, so that a rebuild abandoned by a process that
-- died cleans itself up; Promote makes it persistent.
local function finish(pre, g)
  redis.call('SET', pre .. 'cp', ARGV[4])
  if g ~= redis.call('GET', KEYS[1]) then
    for _, s in ipairs(SUFFIXES) do redis.call('PEXPIRE', pre .. s, ARGV[5]) end
  end
  return {1, ARGV[4]}
end
`

// Suffixes of the keys of one generation of each kind of projection:
// cp the checkpoint; v the views (hash id -> JSON); k the index members
// of each view (hash id -> members), so that a commit can remove the old
// ones; l the listing of scheduled events; h the seat holds (hash booking
// id -> JSON); u the bookings by user; d the bookings awaiting payment by
// deadline.
var (
	eventsSuffixes   = []string{"cp", "v", "k", "l", "h"}
	bookingsSuffixes = []string{"cp", "v", "k", "u", "d"}
	byIDSuffixes     = []string{"cp", "v"}
)

func suffixesLua(suffixes []string) string {
	return "local SUFFIXES = {'" + strings.Join(suffixes, "', '") + "'}\n"
}

func script(parts ...string) *goredis.Script {
	return goredis.NewScript(prelude + strings.Join(parts, "\n"))
}

// The generic scripts, for every projection.
var (
	// getScript returns the fields ARGV[4...] of the generation's hash
	// ARGV[3], false for each one missing.
	getScript = script(`
local pre = gen_prefix()
if not pre then return {} end
return redis.call('HMGET', pre .. ARGV[3], unpack(ARGV, 4))
`)

	// checkpointScript returns the checkpoint, false when the generation
	// has none.
	checkpointScript = script(`
local pre = gen_prefix()
if not pre then return false end
return redis.call('GET', pre .. 'cp')
`)
)

// lifecycle are the scripts that create, promote and delete generations
// of a projection whose generations have suffixes.
type lifecycle struct {
	init, stage, promote, discard *goredis.Script
}

func newLifecycle(suffixes []string) lifecycle {
	s := suffixesLua(suffixes)
	return lifecycle{
		// init makes sure there is an active generation with a
		// checkpoint. An active generation whose checkpoint is missing
		// lost keys (evicted, deleted by hand): its views cannot be
		// trusted, so it is replaced by a fresh one that the projector
		// rebuilds from the log. It returns {active generation, 1 if it
		// was replaced}.
		init: script(s, `
local active = redis.call('GET', KEYS[1])
if active and redis.call('EXISTS', base .. ':g' .. active .. ':cp') == 1 then
  return {tonumber(active), 0}
end
local seq = base .. ':seq'
local g = redis.call('INCR', seq)
if active and g <= tonumber(active) then
  g = tonumber(active) + 1
  redis.call('SET', seq, g)
end
redis.call('SET', base .. ':g' .. g .. ':cp', '0')
redis.call('SET', KEYS[1], g)
if active then
  for _, s in ipairs(SUFFIXES) do redis.call('UNLINK', base .. ':g' .. active .. ':' .. s) end
  return {g, 1}
end
return {g, 0}
`),
		// stage allocates a fresh generation, empty but for its
		// checkpoint 0, with the time to live ARGV[3] (ms).
		stage: script(s, `
local seq = base .. ':seq'
local g = redis.call('INCR', seq)
local active = tonumber(redis.call('GET', KEYS[1]) or '0')
if g <= active then
  g = active + 1
  redis.call('SET', seq, g)
end
redis.call('SET', base .. ':g' .. g .. ':cp', '0', 'PX', ARGV[3])
return g
`),
		// promote makes generation want the active one and deletes the one
		// it replaces. It returns {1, old generation} or {0, why}.
		promote: script(s, `
local pre = base .. ':g' .. want .. ':'
if redis.call('EXISTS', pre .. 'cp') == 0 then return {0, 'gone'} end
local old = redis.call('GET', KEYS[1])
if old == want then return {0, 'active'} end
redis.call('SET', KEYS[1], want)
for _, s in ipairs(SUFFIXES) do redis.call('PERSIST', pre .. s) end
if old then
  for _, s in ipairs(SUFFIXES) do redis.call('UNLINK', base .. ':g' .. old .. ':' .. s) end
end
return {1, old or ''}
`),
		// discard deletes generation want unless it is the active one;
		// it returns 1, or 0 when it is active.
		discard: script(s, `
if redis.call('GET', KEYS[1]) == want then return 0 end
for _, s in ipairs(SUFFIXES) do redis.call('UNLINK', base .. ':g' .. want .. ':' .. s) end
return 1
`),
	}
}

var (
	eventsLifecycle   = newLifecycle(eventsSuffixes)
	bookingsLifecycle = newLifecycle(bookingsSuffixes)
	byIDLifecycle     = newLifecycle(byIDSuffixes)
)

// listScript answers a page of the event listing: ARGV[3] and ARGV[4] are
// the BYLEX bounds, ARGV[5] the limit, ARGV[6] the lower-cased text to
// find (empty for none), ARGV[7] how many index entries a search may read in
// this call. It returns {generation, resume, checkpoint, view...}: resume
// is empty when the page is complete, or the last member read when a search
// ran out of its budget (the caller goes on after it, in the same
// generation); the checkpoint, read in the same step, names the listing's
// version. A generation that no longer exists returns {false}.
var listScript = script(`
local pre, g = gen_prefix()
if not pre or (want ~= '0' and redis.call('EXISTS', pre .. 'cp') == 0) then return {false} end
local list = pre .. 'l'
local min, max = ARGV[3], ARGV[4]
local limit, text, budget = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local ids, resume = {}, ''
if text == '' then
  local members = redis.call('ZRANGE', list, min, max, 'BYLEX', 'LIMIT', 0, limit)
  for i, m in ipairs(members) do ids[i] = string.sub(m, 13, 48) end
else
  local scanned, step = 0, 256
  while #ids < limit do
    local part = redis.call('ZRANGE', list, min, max, 'BYLEX', 'LIMIT', 0, step)
    local last
    for _, m in ipairs(part) do
      last = m
      local b1, b2, b3, b4 = string.byte(m, 49, 52)
      local n = ((b1 * 256 + b2) * 256 + b3) * 256 + b4
      if string.find(string.sub(m, 53, 52 + n), text, 1, true) or string.find(string.sub(m, 53 + n), text, 1, true) then
        ids[#ids + 1] = string.sub(m, 13, 48)
        if #ids == limit then break end
      end
    end
    scanned = scanned + #part
    if #part < step or #ids == limit then break end
    min = '(' .. last
    if scanned >= budget then
      resume = last
      break
    end
  end
end
local out = {g, resume, redis.call('GET', pre .. 'cp') or ''}
if #ids > 0 then
  local views = redis.call('HMGET', pre .. 'v', unpack(ids))
  for i = 1, #views do out[i + 3] = views[i] end
end
return out
`)

// versionScript returns {generation, checkpoint} of the generation the
// call is bound to, which name the version of its listing: every commit
// moves the checkpoint, and a generation is only ever written forward.
// It returns {} when there is no such generation.
var versionScript = script(`
local pre, g = gen_prefix()
if not pre then return {} end
local cp = redis.call('GET', pre .. 'cp')
if not cp then return {} end
return {g, cp}
`)

// userScript answers a page of a user's bookings, newest first: ARGV[3]
// and ARGV[4] are the BYLEX bounds (upper first), ARGV[5] the limit. It
// returns the views.
var userScript = script(`
local pre = gen_prefix()
if not pre then return {} end
local members = redis.call('ZRANGE', pre .. 'u', ARGV[3], ARGV[4], 'BYLEX', 'REV', 'LIMIT', 0, tonumber(ARGV[5]))
if #members == 0 then return {} end
local ids = {}
for i, m in ipairs(members) do ids[i] = string.sub(m, 49, 84) end
return redis.call('HMGET', pre .. 'v', unpack(ids))
`)

// dueScript returns the ids of up to ARGV[4] bookings awaiting payment
// whose deadline member is at most ARGV[3], earliest first.
var dueScript = script(`
local pre = gen_prefix()
if not pre then return {} end
local members = redis.call('ZRANGE', pre .. 'd', '-', ARGV[3], 'BYLEX', 'LIMIT', 0, tonumber(ARGV[4]))
for i, m in ipairs(members) do members[i] = string.sub(m, 13, 48) end
return members
`)

// eventsCommitScript commits a batch of the events projection. ARGV[6],
// ARGV[7] and ARGV[8] count the events, the holds and the released
// holds that follow: (id, view, listing member or empty when the event is
// not scheduled) per event, (booking id, hold) per hold, a booking id per
// release. Each event appears once.
var eventsCommitScript = script(suffixesLua(eventsSuffixes), commitPrelude, `
local pre, g = begin()
if not pre then return g end
local ne, nh, nr = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local i = 9
local ids, views = {}, {}
for k = 1, ne do
  ids[k] = ARGV[i]
  views[2 * k - 1], views[2 * k] = ARGV[i], ARGV[i + 1]
  i = i + 3
end
local old = hmget(pre .. 'k', ids)
local zrem, zadd, keep, drop = {}, {}, {}, {}
for k = 1, ne do
  local member, prev = ARGV[9 + 3 * (k - 1) + 2], old[k]
  if prev and prev ~= member then zrem[#zrem + 1] = prev end
  if member ~= '' then
    if prev ~= member then
      zadd[#zadd + 1] = '0'
      zadd[#zadd + 1] = member
      keep[#keep + 1] = ids[k]
      keep[#keep + 1] = member
    end
  elseif prev then
    drop[#drop + 1] = ids[k]
  end
end
each('ZREM', pre .. 'l', zrem)
each('ZADD', pre .. 'l', zadd)
each('HSET', pre .. 'k', keep)
each('HDEL', pre .. 'k', drop)
each('HSET', pre .. 'v', views)
local holds = {}
for k = 1, 2 * nh do holds[k] = ARGV[i + k - 1] end
i = i + 2 * nh
each('HSET', pre .. 'h', holds)
local released = {}
for k = 1, nr do released[k] = ARGV[i + k - 1] end
each('HDEL', pre .. 'h', released)
return finish(pre, g)
`)

// bookingsCommitScript commits a batch of the bookings projection.
// ARGV[6] counts the bookings that follow, each as (id, view, member of
// the index by user, member of the index by deadline or empty when it does
// not await payment). Each booking appears once.
var bookingsCommitScript = script(suffixesLua(bookingsSuffixes), commitPrelude, `
local pre, g = begin()
if not pre then return g end
local n = tonumber(ARGV[6])
local ids, views = {}, {}
for k = 1, n do
  local i = 7 + 4 * (k - 1)
  ids[k] = ARGV[i]
  views[2 * k - 1], views[2 * k] = ARGV[i], ARGV[i + 1]
end
local old = hmget(pre .. 'k', ids)
local uadd, urem, dadd, drem, keep = {}, {}, {}, {}, {}
for k = 1, n do
  local i = 7 + 4 * (k - 1)
  local um, dm = ARGV[i + 2], ARGV[i + 3]
  local pu, pd = '', ''
  if old[k] then
    pu, pd = string.sub(old[k], 1, 84), string.sub(old[k], 85)
  end
  if pu ~= um then
    if pu ~= '' then urem[#urem + 1] = pu end
    uadd[#uadd + 1] = '0'
    uadd[#uadd + 1] = um
  end
  if pd ~= dm then
    if pd ~= '' then drem[#drem + 1] = pd end
    if dm ~= '' then
      dadd[#dadd + 1] = '0'
      dadd[#dadd + 1] = dm
    end
  end
  if pu ~= um or pd ~= dm then
    keep[#keep + 1] = ids[k]
    keep[#keep + 1] = um .. dm
  end
end
each('ZREM', pre .. 'u', urem)
each('ZADD', pre .. 'u', uadd)
each('ZREM', pre .. 'd', drem)
each('ZADD', pre .. 'd', dadd)
each('HSET', pre .. 'k', keep)
each('HSET', pre .. 'v', views)
return finish(pre, g)
`)

// byIDCommitScript commits a batch of a projection read only by id
// (payments, profiles): ARGV[6] counts the (id, view) pairs that follow.
var byIDCommitScript = script(suffixesLua(byIDSuffixes), commitPrelude, `
local pre, g = begin()
if not pre then return g end
local views = {}
for k = 1, 2 * tonumber(ARGV[6]) do views[k] = ARGV[6 + k] end
each('HSET', pre .. 'v', views)
return finish(pre, g)
`)

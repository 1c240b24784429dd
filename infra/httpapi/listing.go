package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"

	"github.com/gofiber/fiber/v2"

	"github.com/ticketd/ticketing/readmodels"
)

// The event listing is the hottest read, and the same few pages are asked
// for again and again between two changes of the read model. So the
// encoded answer of each page is kept, labelled with the version of the
// listing it was read at (readmodels.ListingVersion), and served as long as
// the read model is still at that version.
//
// Why this never serves stale data: a page is cached with the version that
// was read together with it, under the read model's lock, so its content
// is exactly the listing at that version. A cached page is served only
// when the read model's current version equals its label, and a commit
// moves the version on before any reader can see the views it changed. A
// served page is therefore the page a fresh read would return at that
// moment: it is never older than what the read store shows, and a later
// answer never goes back to an earlier state.
//
// Every answer carries a strong ETag (a digest of its bytes) and
// Cache-Control: no-cache, so clients and proxies may keep a copy but
// revalidate it each time; If-None-Match with a current tag is a 304.

// listingVersioner is the part of the event reads that tells the current
// version of the listing. Readers that cannot tell (the zero version) are
// never cached.
type listingVersioner interface {
	ListingVersion(ctx context.Context) (readmodels.ListingVersion, error)
}

// maxCachedPages bounds the cache: the query string is the client's, so
// the set of keys is not. Pages of stale versions go first.
const maxCachedPages = 256

// encodedPage is one encoded answer of the listing. It is immutable: its
// body is handed to the response as it is.
type encodedPage struct {
	version readmodels.ListingVersion
	body    []byte
	etag    string
}

// listingCache maps a query string to the page last encoded for it.
type listingCache struct {
	mu    sync.RWMutex
	pages map[string]*encodedPage
}

func newListingCache() *listingCache {
	return &listingCache{pages: make(map[string]*encodedPage)}
}

// get returns the page cached for query if it was read at version.
func (lc *listingCache) get(query []byte, version readmodels.ListingVersion) *encodedPage {
	lc.mu.RLock()
	p := lc.pages[string(query)]
	lc.mu.RUnlock()
	if p == nil || p.version != version {
		return nil
	}
	return p
}

// put caches p for query, unless a page of the same version is already
// there (two requests that missed together).
func (lc *listingCache) put(query string, p *encodedPage) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if old, ok := lc.pages[query]; ok {
		if old.version != p.version {
			lc.pages[query] = p
		}
		return
	}
	if len(lc.pages) >= maxCachedPages {
		for k, old := range lc.pages {
			if old.version != p.version {
				delete(lc.pages, k)
			}
		}
		for k := range lc.pages {
			if len(lc.pages) < maxCachedPages {
				break
			}
			delete(lc.pages, k)
		}
	}
	lc.pages[query] = p
}

func newEncodedPage(version readmodels.ListingVersion, body []byte) *encodedPage {
	sum := sha256.Sum256(body)
	var tag [2 + 32]byte
	tag[0], tag[len(tag)-1] = '"', '"'
	hex.Encode(tag[1:33], sum[:16])
	return &encodedPage{version: version, body: body, etag: string(tag[:])}
}

var (
	headerETag         = []byte(fiber.HeaderETag)
	headerCacheControl = []byte(fiber.HeaderCacheControl)
	noCache            = []byte("no-cache")
	mimeJSON           = []byte(fiber.MIMEApplicationJSON)
)

func (s *Server) listEvents(c *fiber.Ctx) error {
	query := c.Request().URI().QueryString()
	if s.listingVersion != nil {
		// The hit path makes no timer of its own: an embedded store
		// answers from memory, and Redis's client bounds its round trip.
		// A version the store cannot tell (an error) only means no cached
		// page: the read below answers, or reports the store's failure.
		if version, err := s.listingVersion.ListingVersion(c.UserContext()); err == nil && version.Known() {
			if p := s.listing.get(query, version); p != nil {
				return sendPage(c, p)
			}
		}
	}
	key := string(query) // copied: the request's memory is reused
	ctx, cancel := s.ctx(c)
	defer cancel()
	page, err := s.Events.Reads.ListEvents(ctx, readmodels.EventListRequest{
		ListRequest: readmodels.ListRequest{Limit: c.Query("limit"), Cursor: c.Query("cursor")},
		Q:           c.Query("q"), From: c.Query("from"), To: c.Query("to"),
	})
	if err != nil {
		return err
	}
	body, ok := appendEventListJSON(make([]byte, 0, 512*len(page.Items)+64), &page)
	if !ok {
		// A time encoding/json cannot write: let it say so, as before.
		out := eventListJSON{Items: make([]eventJSON, len(page.Items)), NextCursor: optString(page.NextCursor)}
		for i := range page.Items {
			out.Items[i] = eventFromView(&page.Items[i])
		}
		return c.JSON(out)
	}
	p := newEncodedPage(page.Version, body)
	if page.Version.Known() {
		s.listing.put(key, p)
	}
	return sendPage(c, p)
}

// sendPage answers with p, or 304 when the client already has it.
func sendPage(c *fiber.Ctx, p *encodedPage) error {
	h := &c.Response().Header
	h.SetBytesKV(headerCacheControl, noCache)
	h.SetBytesK(headerETag, p.etag)
	if inm := c.Request().Header.Peek(fiber.HeaderIfNoneMatch); len(inm) > 0 && etagListed(string(inm), p.etag) {
		c.Status(fiber.StatusNotModified)
		return nil
	}
	h.SetContentTypeBytes(mimeJSON)
	c.Response().SetBodyRaw(p.body)
	return nil
}

// etagListed reports whether an If-None-Match value names etag: "*", or a
// comma-separated list compared weakly (RFC 9110, 13.1.2).
func etagListed(header, etag string) bool {
	for header != "" {
		var tag string
		tag, header, _ = strings.Cut(header, ",")
		tag = strings.TrimSpace(tag)
		if tag == "*" || strings.TrimPrefix(tag, "W/") == etag {
			return true
		}
	}
	return false
}

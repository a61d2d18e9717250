package demo

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

func (o *Origin) home(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Has("s") {
		o.search(w, r)
		return
	}
	p := newPage(r, "Home")
	p.Posts = latest(12, nil)
	o.cacheablePage(w, r, "list", p, "home")
}

func (o *Origin) search(w http.ResponseWriter, r *http.Request) {
	q := []rune(strings.TrimSpace(r.URL.Query().Get("s")))
	p := newPage(r, "Search")
	p.Query = string(q[:min(len(q), 100)])
	p.Heading = fmt.Sprintf("Search results for “%s”", p.Query)
	needle := strings.ToLower(p.Query)
	for _, a := range latest(len(articles), nil) {
		if len(p.Posts) < 20 && strings.Contains(strings.ToLower(a.Title+" "+strings.Join(a.Paras, " ")), needle) {
			p.Posts = append(p.Posts, a)
		}
	}
	o.privatePage(w, r, http.StatusOK, ccNoCache, "list", p)
}

func (o *Origin) article(w http.ResponseWriter, r *http.Request) {
	a := articleBySlug[r.PathValue("slug")]
	if a == nil {
		o.notFound(w, r)
		return
	}
	rel := releaseOf(r)
	p := newPage(r, a.Title)
	p.Post, p.HeroURL = a, a.Hero()
	keys := fmt.Sprintf("post-%d term-%s", a.ID, a.Cat.Slug)
	if a.CacheTag {
		w.Header().Set("Cache-Tag", strings.ReplaceAll(keys, " ", ","))
	}
	if rel.bad {
		// A fresh URL per release, as WordPress versions assets, so the late copy is what loads.
		p.HeroURL += "?ver=" + rel.id
		http.SetCookie(w, &http.Cookie{Name: "demo_ab", Value: strconv.FormatInt(o.served.Load()%2, 10),
			Path: "/", MaxAge: 30 * 86400, SameSite: http.SameSiteLaxMode})
	}
	o.cacheablePage(w, r, "article", p, keys)
}

func (o *Origin) category(w http.ResponseWriter, r *http.Request) {
	c := categoryBySlug(r.PathValue("cat"))
	if c == nil {
		o.notFound(w, r)
		return
	}
	p := newPage(r, c.Name)
	p.Heading, p.Posts = "Category: "+c.Name, latest(len(articles), c)
	o.cacheablePage(w, r, "list", p, "term-"+c.Slug)
}

func (o *Origin) slow(w http.ResponseWriter, r *http.Request) {
	if o.wait(r.Context(), slowPage) != nil {
		return // the client gave up
	}
	o.cacheablePage(w, r, "slow", newPage(r, "Slow page"), "slow")
}

func (o *Origin) notFound(w http.ResponseWriter, r *http.Request) {
	o.privatePage(w, r, http.StatusNotFound, ccNoCache, "notfound", newPage(r, "Page not found"))
}

// image serves a generated upload. Under a bad release the hero (full size) comes 800 ms
// late and must be revalidated on every view, so a cache in front cannot hide the delay.
func (o *Origin) image(w http.ResponseWriter, r *http.Request) {
	n, size, ok := parseImageName(r.PathValue("file"))
	if !ok {
		o.notFound(w, r)
		return
	}
	data, err := uploads.get(n, size)
	if err != nil {
		o.fail(w, "render image", err)
		return
	}
	cc := ccImmutable
	if releaseOf(r).bad && size == "" {
		cc = "no-cache"
		if o.wait(r.Context(), lateHero) != nil {
			return
		}
	}
	w.Header().Set("Cache-Control", cc)
	validated(w, r, "image/png", data, imagesModified)
}

// siteURL builds absolute links from the request, as WordPress does when its home URL
// follows the Host header; a malformed Host falls back to localhost.
func siteURL(r *http.Request) string {
	host := r.Host
	for _, c := range host {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-:[]", c)) {
			host = ""
		}
	}
	if host == "" || len(host) > 255 {
		host = "localhost"
	}
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		return "https://" + host
	}
	return "http://" + host
}

type rssItem struct {
	Title   string `xml:"title"`
	Link    string `xml:"link"`
	GUID    string `xml:"guid"`
	PubDate string `xml:"pubDate"`
	Cat     string `xml:"category"`
	Desc    string `xml:"description"`
}

func (o *Origin) feed(w http.ResponseWriter, r *http.Request) {
	base := siteURL(r)
	var items []rssItem
	for _, a := range latest(10, nil) {
		items = append(items, rssItem{a.Title, base + a.URL(), base + "/?p=" + strconv.Itoa(a.ID),
			a.Date.Format(time.RFC1123Z), a.Cat.Name, a.Excerpt})
	}
	doc := struct {
		XMLName xml.Name  `xml:"rss"`
		Version string    `xml:"version,attr"`
		Title   string    `xml:"channel>title"`
		Link    string    `xml:"channel>link"`
		Desc    string    `xml:"channel>description"`
		Items   []rssItem `xml:"channel>item"`
	}{Version: "2.0", Title: "Bean & Byte", Link: base + "/", Desc: "A coffee blog and shop", Items: items}
	body, err := xml.MarshalIndent(doc, "", " ")
	if err != nil {
		o.fail(w, "render feed", err)
		return
	}
	w.Header().Set("Surrogate-Key", "feed")
	validated(w, r, "application/rss+xml; charset=UTF-8", append([]byte(xml.Header), body...), releaseOf(r).at)
}

// posts is the REST API's post list, with WordPress' paging parameters and headers.
func (o *Origin) posts(w http.ResponseWriter, r *http.Request) {
	perPage, ok1 := intParam(r, "per_page", 10, 1, 100)
	pageNo, ok2 := intParam(r, "page", 1, 1, 1000)
	if !ok1 || !ok2 {
		w.Header().Set("Cache-Control", ccNoCache)
		send(w, r, http.StatusBadRequest, "application/json; charset=UTF-8",
			[]byte(`{"code":"rest_invalid_param","message":"per_page must be 1-100 and page a positive number"}`))
		return
	}
	type rendered struct {
		Rendered string `json:"rendered"`
	}
	type post struct {
		ID         int      `json:"id"`
		Date       string   `json:"date"`
		Slug       string   `json:"slug"`
		Link       string   `json:"link"`
		Title      rendered `json:"title"`
		Excerpt    rendered `json:"excerpt"`
		Categories []int    `json:"categories"`
	}
	all, out, base := latest(len(articles), nil), []post{}, siteURL(r)
	for _, a := range all[min((pageNo-1)*perPage, len(all)):min(pageNo*perPage, len(all))] {
		out = append(out, post{a.ID, a.Date.Format("2006-01-02T15:04:05"), a.Slug, base + a.URL(),
			rendered{a.Title}, rendered{"<p>" + a.Excerpt + "</p>"}, []int{a.Cat.ID}})
	}
	body, err := json.Marshal(out)
	if err != nil {
		o.fail(w, "render posts", err)
		return
	}
	h := w.Header()
	h.Set("X-WP-Total", strconv.Itoa(len(all)))
	h.Set("X-WP-TotalPages", strconv.Itoa((len(all)+perPage-1)/perPage))
	h.Set("Vary", "Origin")
	h.Set("Surrogate-Key", "rest-posts")
	validated(w, r, "application/json; charset=UTF-8", body, releaseOf(r).at)
}

// intParam reads an optional numeric query parameter; false when it is out of [lo, hi].
func intParam(r *http.Request, name string, def, lo, hi int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= lo && n <= hi
}

func (o *Origin) cart(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: "woocommerce_items_in_cart", Value: "1", Path: "/"})
	o.privatePage(w, r, http.StatusOK, ccNoStore, "cart", newPage(r, "Cart"))
}

func (o *Origin) checkout(w http.ResponseWriter, r *http.Request) {
	o.privatePage(w, r, http.StatusOK, ccNoStore, "checkout", newPage(r, "Checkout"))
}

// placeOrder takes the checkout form and sends the buyer to the thank-you page, the page
// the conversion goal counts.
func (o *Origin) placeOrder(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	order := o.orders.Add(1)
	http.SetCookie(w, &http.Cookie{Name: "woocommerce_items_in_cart", Path: "/", MaxAge: -1})
	w.Header().Set("Cache-Control", ccNoStore)
	http.Redirect(w, r, fmt.Sprintf("/checkout/order-received/%d/", order), http.StatusSeeOther)
}

func (o *Origin) orderReceived(w http.ResponseWriter, r *http.Request) {
	s := r.PathValue("order")
	if n, err := strconv.Atoi(s); err != nil || n < 1 || strconv.Itoa(n) != s {
		o.notFound(w, r)
		return
	}
	p := newPage(r, "Order received")
	p.Order = s
	o.privatePage(w, r, http.StatusOK, ccNoStore, "received", p)
}

func (o *Origin) loginForm(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("action") == "logout" {
		for _, name := range []string{"wordpress_logged_in_" + cookieHash, "wordpress_" + cookieHash} {
			http.SetCookie(w, &http.Cookie{Name: name, Path: "/", MaxAge: -1, HttpOnly: true})
		}
		w.Header().Set("Cache-Control", ccPrivate)
		http.Redirect(w, r, "/wp-login.php?loggedout=true", http.StatusFound)
		return
	}
	o.privatePage(w, r, http.StatusOK, ccPrivate, "login", newPage(r, "Log in"))
}

// login accepts any user name and password: the demo has one account, "demo".
func (o *Origin) login(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "wordpress_" + cookieHash, Value: "demo", Path: "/wp-admin", HttpOnly: true})
	http.SetCookie(w, &http.Cookie{Name: "wordpress_logged_in_" + cookieHash, Value: "demo", Path: "/", HttpOnly: true})
	to := r.FormValue("redirect_to")
	if !strings.HasPrefix(to, "/") || strings.HasPrefix(to, "//") || strings.HasPrefix(to, "/\\") {
		to = "/wp-admin/" // only local targets: no open redirect
	}
	w.Header().Set("Cache-Control", ccPrivate)
	http.Redirect(w, r, to, http.StatusFound)
}

func (o *Origin) admin(w http.ResponseWriter, r *http.Request) {
	p := newPage(r, "Dashboard")
	w.Header().Set("Cache-Control", ccPrivate)
	if p.User == "" {
		http.Redirect(w, r, "/wp-login.php?redirect_to=%2Fwp-admin%2F&reauth=1", http.StatusFound)
		return
	}
	p.Posts = articles
	o.privatePage(w, r, http.StatusOK, ccPrivate, "admin", p)
}

func (o *Origin) panel(w http.ResponseWriter, r *http.Request) {
	p := newPage(r, "Demo control panel")
	p.Requests, p.Posts = o.Requests(), latest(1, nil)
	p.Next = "v" + strconv.Itoa(releaseOf(r).seq+1)
	o.privatePage(w, r, http.StatusOK, ccNoStore, "panel", p)
}

func (o *Origin) getRelease(w http.ResponseWriter, r *http.Request) {
	id, bad := o.Release()
	body, _ := json.Marshal(map[string]any{"id": id, "bad": bad}) // a map of a string and a bool always marshals
	w.Header().Set("Cache-Control", ccNoStore)
	send(w, r, http.StatusOK, "application/json", body)
}

// postRelease is the HTTP switch: POST /__demo/release?id=v2&bad=1 (query or form fields).
// Without id it ships the next "v<n>". Browsers (Accept: text/html) go back to the panel.
func (o *Origin) postRelease(w http.ResponseWriter, r *http.Request) {
	if !parseForm(w, r) {
		return
	}
	id := r.FormValue("id")
	if id == "" {
		id = "v" + strconv.Itoa(o.rel.Load().seq+1)
	}
	if !validID(id) {
		http.Error(w, fmt.Sprintf("id: must be 1-64 letters, digits, '.', '_' or '-', got %q", id), http.StatusBadRequest)
		return
	}
	bad := false
	if s := r.FormValue("bad"); s != "" {
		var err error
		if bad, err = strconv.ParseBool(s); err != nil {
			http.Error(w, fmt.Sprintf("bad: must be 0, 1, true or false, got %q", s), http.StatusBadRequest)
			return
		}
	}
	o.SetRelease(id, bad)
	w.Header().Set("X-Release", id)
	if strings.Contains(r.Header.Get("Accept"), "text/html") {
		w.Header().Set("Cache-Control", ccNoStore)
		http.Redirect(w, r, "/__demo/", http.StatusSeeOther)
		return
	}
	o.getRelease(w, r)
}

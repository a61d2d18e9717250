package demo

import (
	"bytes"
	"fmt"
	"html/template"
	"image"
	"image/color"
	"image/png"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
)

// article is one blog post. Articles are generated once, deterministically, so every run of
// the demo (and every test) sees the same titles, slugs, dates and text.
type article struct {
	ID       int
	Slug     string
	Title    string
	Cat      *category
	Date     time.Time
	Excerpt  string
	Paras    []string
	CacheTag bool // also announces its keys in Cache-Tag, as Cloudflare-style plugins do
}

type category struct {
	ID         int
	Slug, Name string
}

func (a *article) URL() string   { return "/articles/" + a.Slug + "/" }
func (a *article) Hero() string  { return fmt.Sprintf("/wp-content/uploads/%d.png", a.ID) }
func (a *article) Thumb() string { return fmt.Sprintf("/wp-content/uploads/%d-400x210.png", a.ID) }

var categories = []*category{
	{1, "brewing", "Brewing"}, {2, "beans", "Beans"}, {3, "gear", "Gear"},
	{4, "recipes", "Recipes"}, {5, "travel", "Travel"},
}

var articles, articleBySlug = buildArticles()

func buildArticles() ([]*article, map[string]*article) {
	prefixes := []string{"A Beginner's Guide to", "The Quiet Art of", "Ten Notes on",
		"What We Got Wrong About", "Falling for"}
	topics := []struct {
		name string
		cat  int
	}{
		{"Pour-Over", 0}, {"Espresso at Home", 0}, {"Cold Brew", 3}, {"Ethiopian Naturals", 1},
		{"Burr Grinders", 2}, {"Milk Texturing", 3}, {"the AeroPress", 2}, {"Water Chemistry", 0},
		{"Colombian Washed Coffees", 1}, {"Coffee in Lisbon", 4},
	}
	sentences := []string{
		"Most of what makes %s rewarding happens before the kettle even clicks off.",
		"We tested it for three weeks with the same beans, the same scale and far too much patience.",
		"The first cup was fine; the fifth was the one that made us rethink the whole routine.",
		"If you remember one thing about %s, make it this: taste, change one variable, taste again.",
		"Grind size matters more than the brand of anything you pour it into.",
		"Our readers wrote in with their own recipes, and a few of them beat ours outright.",
		"There is no single right answer, only a cup you like more than yesterday's.",
		"Freshly roasted beans rest a few days before they show what they can do.",
		"The numbers below are a starting point, not a rule, so adjust them to your water.",
		"A cheap thermometer taught us more about %s than any video did.",
		"Sweetness, acidity and body pull against each other; balance is the craft.",
		"We keep coming back to %s on slow Sunday mornings, and now you know why.",
	}
	list := make([]*article, 0, 50)
	bySlug := make(map[string]*article, 50)
	base := time.Date(2025, 1, 6, 9, 30, 0, 0, time.UTC)
	for i := 1; i <= 50; i++ {
		topic := topics[(i-1)%len(topics)]
		a := &article{
			ID:       i,
			Title:    prefixes[(i-1)/len(topics)] + " " + topic.name,
			Cat:      categories[topic.cat],
			Date:     base.AddDate(0, 0, 3*i),
			CacheTag: i%3 == 0,
		}
		a.Slug = slugify(a.Title)
		for p := 0; p < 4; p++ {
			var b strings.Builder
			for s := 0; s < 3; s++ {
				text := sentences[(i*7+p*3+s*5)%len(sentences)]
				if strings.Contains(text, "%s") {
					text = fmt.Sprintf(text, strings.ToLower(topic.name))
				}
				b.WriteString(text + " ")
			}
			a.Paras = append(a.Paras, strings.TrimSpace(b.String()))
		}
		a.Excerpt = a.Paras[0]
		list = append(list, a)
		bySlug[a.Slug] = a
	}
	return list, bySlug
}

func slugify(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			dash = false
		case r == '\'':
		case !dash && b.Len() > 0:
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

// latest returns up to n articles, newest first, optionally only those in cat.
func latest(n int, cat *category) []*article {
	var out []*article
	for i := len(articles) - 1; i >= 0 && len(out) < n; i-- {
		if cat == nil || articles[i].Cat == cat {
			out = append(out, articles[i])
		}
	}
	return out
}

func categoryBySlug(slug string) *category {
	for _, c := range categories {
		if c.Slug == slug {
			return c
		}
	}
	return nil
}

// Image sizes follow WordPress' naming: <n>.png is the full hero, <n>-WxH.png a resized copy.
const heroW, heroH = 1200, 630

var imageSizes = map[string][2]int{"": {heroW, heroH}, "400x210": {400, 210}, "150x150": {150, 150}}

// uploads renders each gradient PNG once per process and keeps it: images depend on their
// name only, so every Origin shares them, and the names are bounded by the articles and
// sizes above, so memory is too (about 5 MB when all are rendered).
var uploads = imageStore{byID: make(map[string]*renderedImage)}

type imageStore struct {
	mu   sync.Mutex
	byID map[string]*renderedImage
}

type renderedImage struct {
	once sync.Once
	data []byte
	err  error
}

// parseImageName maps "7.png" or "7-400x210.png" to the article number and size.
func parseImageName(name string) (n int, size string, ok bool) {
	stem, found := strings.CutSuffix(name, ".png")
	if !found {
		return 0, "", false
	}
	num, size, resized := strings.Cut(stem, "-")
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > len(articles) || strconv.Itoa(n) != num || resized && size == "" {
		return 0, "", false
	}
	if _, known := imageSizes[size]; !known {
		return 0, "", false
	}
	return n, size, true
}

func (s *imageStore) get(n int, size string) ([]byte, error) {
	key := strconv.Itoa(n) + "-" + size
	s.mu.Lock()
	img, ok := s.byID[key]
	if !ok {
		img = &renderedImage{}
		s.byID[key] = img
	}
	s.mu.Unlock()
	img.once.Do(func() {
		wh := imageSizes[size]
		img.data, img.err = renderGradient(n, wh[0], wh[1])
	})
	return img.data, img.err
}

// renderGradient draws a diagonal two-hue gradient with a soft sun, different for each n.
func renderGradient(n, w, h int) ([]byte, error) {
	h1 := float64((n * 47) % 360)
	from, to := hsv(h1, 0.55, 0.95), hsv(math.Mod(h1+70, 360), 0.75, 0.55)
	cx, cy, rad := float64(w)*0.72, float64(h)*0.35, float64(min(w, h))*0.22
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			t := (float64(x)/float64(w) + float64(y)/float64(h)) / 2
			r, g, b := lerp(from.R, to.R, t), lerp(from.G, to.G, t), lerp(from.B, to.B, t)
			if dx, dy := float64(x)-cx, float64(y)-cy; dx*dx+dy*dy < rad*rad {
				glow := 0.45 * (1 - math.Sqrt(dx*dx+dy*dy)/rad)
				r, g, b = lerp(r, 255, glow), lerp(g, 250, glow), lerp(b, 235, glow)
			}
			px := row[4*x : 4*x+4 : 4*x+4]
			px[0], px[1], px[2], px[3] = r, g, b, 255
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("encode image %d (%dx%d): %w", n, w, h, err)
	}
	return buf.Bytes(), nil
}

func lerp(a, b uint8, t float64) uint8 { return uint8(float64(a) + (float64(b)-float64(a))*t) }

func hsv(h, s, v float64) color.RGBA {
	c := v * s
	x := c * (1 - math.Abs(math.Mod(h/60, 2)-1))
	var r, g, b float64
	switch {
	case h < 60:
		r, g = c, x
	case h < 120:
		r, g = x, c
	case h < 180:
		g, b = c, x
	case h < 240:
		g, b = x, c
	case h < 300:
		r, b = x, c
	default:
		r, b = c, x
	}
	m := v - c
	return color.RGBA{uint8((r + m) * 255), uint8((g + m) * 255), uint8((b + m) * 255), 255}
}

// page is what every template sees; fields a page does not use stay zero.
type page struct {
	Title    string
	Release  string
	Bad      bool
	User     string // "" for an anonymous visitor
	Cats     []*category
	Posts    []*article
	Post     *article
	HeroURL  string
	Heading  string
	Query    string
	Order    string
	Requests int64
	Next     string
}

// blockingScript is the bad release's "A/B test bootstrap": 300 ms of main
// thread after the page loads (a long task after FCP: TBT) and 200 ms on
// every click (INP), what a heavy tag manager does to a page.
const blockingScript = `<script id="ab-test-bootstrap">(function(){function busy(ms){var end=Date.now()+ms;while(Date.now()<end){}}addEventListener("load",function(){setTimeout(function(){busy(300)},0)});addEventListener("click",function(){busy(200)},true)})();</script>`

const layoutHTML = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} – Bean &amp; Byte</title>
<meta name="generator" content="WordPress 6.1 (edgevitals demo)">
{{if .Bad}}` + blockingScript + `{{end}}
<style>
*{box-sizing:border-box}body{margin:0;font:17px/1.6 Georgia,serif;color:#2b2118;background:#faf6f1}
a{color:#8a4b1f}header{background:#3b2618;color:#fbeee0;padding:1rem 1.5rem}
header a{color:#fbeee0;text-decoration:none}.brand{font:700 1.6rem system-ui,sans-serif}
nav{display:flex;flex-wrap:wrap;gap:1rem;margin-top:.4rem;font:15px system-ui,sans-serif}
.hello{float:right;background:#c58b4b;color:#2b2118;padding:.2rem .6rem;border-radius:4px;font:14px system-ui}
main{max-width:860px;margin:0 auto;padding:1.5rem}.card{display:flex;gap:1rem;margin:0 0 1.5rem;background:#fff;
border-radius:8px;overflow:hidden;box-shadow:0 1px 3px #0002}.card img{flex:none;max-width:45%;height:auto}.card div{padding:.6rem 1rem .6rem 0}
.card h2{margin:.2rem 0;font-size:1.2rem}.meta{font:13px system-ui;color:#7a6a5c}.hero{width:100%;height:auto;border-radius:8px}
form{background:#fff;padding:1rem;border-radius:8px}input,button{font:16px system-ui;padding:.45rem;margin:.25rem 0}
button{background:#8a4b1f;color:#fff;border:0;border-radius:4px;padding:.5rem 1rem;cursor:pointer}
footer{text-align:center;font:13px system-ui;color:#7a6a5c;padding:2rem}
</style></head><body>
<header>{{if .User}}<span class="hello">Hello, {{.User}} · <a href="/wp-admin/">Dashboard</a></span>{{end}}
<a class="brand" href="/">Bean &amp; Byte</a>
<nav><a href="/">Home</a>{{range .Cats}}<a href="/category/{{.Slug}}/">{{.Name}}</a>{{end}}
<a href="/cart/">Shop</a><a href="/feed/">RSS</a>{{if not .User}}<a href="/wp-login.php">Log in</a>{{end}}</nav></header>
<main>{{template "main" .}}</main>
<footer>Bean &amp; Byte · a coffee blog and shop · release {{.Release}} · served by the edgevitals demo origin</footer>
</body></html>`

var pageBodies = map[string]string{
	"list": `{{define "main"}}{{if .Heading}}<h1>{{.Heading}}</h1>{{end}}
<form role="search" action="/"><input name="s" value="{{.Query}}" placeholder="Search articles"> <button>Search</button></form><br>
{{range .Posts}}<article class="card"><a href="{{.URL}}"><img src="{{.Thumb}}" width="400" height="210" alt=""></a>
<div><div class="meta">{{.Cat.Name}} · {{.Date.Format "January 2, 2006"}}</div>
<h2><a href="{{.URL}}">{{.Title}}</a></h2><p>{{.Excerpt}}</p></div></article>
{{else}}<p>Nothing found. Try another search.</p>{{end}}{{end}}`,
	"article": `{{define "main"}}{{with .Post}}<article><div class="meta">{{.Cat.Name}} · {{.Date.Format "January 2, 2006"}}</div>
<h1>{{.Title}}</h1>{{end}}<img class="hero" src="{{.HeroURL}}" width="1200" height="630" alt="" fetchpriority="high">
{{range .Post.Paras}}<p>{{.}}</p>{{end}}
<p><a href="/cart/">Buy our house blend</a> · <a href="/category/{{.Post.Cat.Slug}}/">More {{.Post.Cat.Name}}</a></p></article>{{end}}`,
	"cart": `{{define "main"}}<h1>Cart</h1><div class="card"><img src="/wp-content/uploads/1-150x150.png" width="150" height="150" alt="">
<div><h2>House Blend, 250 g</h2><p>Quantity 1 · €12.50</p></div></div><p><a href="/checkout/">Proceed to checkout</a></p>{{end}}`,
	"checkout": `{{define "main"}}<h1>Checkout</h1><form method="post" action="/checkout/">
<label>Name<br><input name="billing_name" value="Demo Customer"></label><br>
<label>Email<br><input name="billing_email" type="email" value="demo@example.com"></label><br>
<p>House Blend, 250 g · €12.50</p><button>Place order</button></form>{{end}}`,
	"received": `{{define "main"}}<h1>Order received</h1><p>Thank you. Your order #{{.Order}} has been received.</p>
<p><a href="/">Back to the blog</a></p>{{end}}`,
	"login": `{{define "main"}}<h1>Log in</h1><form method="post" action="/wp-login.php">
<label>Username<br><input name="log" value="demo"></label><br><label>Password<br><input name="pwd" type="password" value="demo"></label><br>
<button>Log In</button></form>{{end}}`,
	"admin": `{{define "main"}}<h1>Dashboard</h1><p>{{len .Posts}} posts published. Current release: {{.Release}}.</p>
<p><a href="/wp-login.php?action=logout">Log out</a></p>{{end}}`,
	"notfound": `{{define "main"}}<h1>Page not found</h1><p>It looks like nothing was found here. <a href="/">Go home</a>.</p>{{end}}`,
	"slow": `{{define "main"}}<h1>A slow page</h1><p>This page takes the origin 500 ms to build, as a heavy plugin would.
A cache in front of it answers in a millisecond once it has a copy.</p>{{end}}`,
	"panel": `{{define "main"}}<h1>Demo control panel</h1>
<p>Current release: <b>{{.Release}}</b> {{if .Bad}}(bad: blocking script, late hero image, A/B cookie){{else}}(good){{end}}.
Requests served by the origin: {{.Requests}}.</p>
<form method="post" action="/__demo/release"><input type="hidden" name="id" value="{{.Next}}"><input type="hidden" name="bad" value="0">
<button>Ship a good release ({{.Next}})</button></form><br>
<form method="post" action="/__demo/release"><input type="hidden" name="id" value="{{.Next}}"><input type="hidden" name="bad" value="1">
<button>Ship a bad release ({{.Next}})</button></form>
<p>A cache in front keeps serving the pages it holds until they expire or are purged.
Then open an <a href="{{(index .Posts 0).URL}}">article</a>, the <a href="/">home page</a> or the <a href="/slow/">slow page</a>.</p>{{end}}`,
}

var templates = func() map[string]*template.Template {
	base := template.Must(template.New("layout").Parse(layoutHTML))
	out := make(map[string]*template.Template, len(pageBodies))
	for name, body := range pageBodies {
		out[name] = template.Must(template.Must(base.Clone()).Parse(body))
	}
	return out
}()

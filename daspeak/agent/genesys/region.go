package genesys

import (
	"fmt"
	"net/url"
	"strings"
)

// Regions maps the Genesys Cloud environment names an interaction widget
// receives as gcTargetEnv to the region's domain. The API host of a region
// is "api." + domain, its login host "login." + domain and its apps host
// "apps." + domain.
var Regions = map[string]string{
	"prod":       "mypurecloud.com",
	"prod-apne1": "mypurecloud.jp",
	"prod-apne2": "apne2.pure.cloud",
	"prod-apne3": "apne3.pure.cloud",
	"prod-aps1":  "aps1.pure.cloud",
	"prod-apse2": "mypurecloud.com.au",
	"prod-cac1":  "cac1.pure.cloud",
	"prod-euc1":  "mypurecloud.de",
	"prod-euc2":  "euc2.pure.cloud",
	"prod-euw1":  "mypurecloud.ie",
	"prod-euw2":  "euw2.pure.cloud",
	"prod-mec1":  "mec1.pure.cloud",
	"prod-sae1":  "sae1.pure.cloud",
	"prod-use2":  "use2.us-gov-pure.cloud",
	"prod-usw2":  "usw2.pure.cloud",
}

// Region returns the region domain ("mypurecloud.ie") of an interaction
// widget's gcHostOrigin ("https://apps.mypurecloud.ie") or, when it is
// empty, of its gcTargetEnv ("prod-euw1"). Only the domains in Regions are
// accepted, so a URL parameter can never point the server or the page at
// another host. When both are given they must name the same region.
func Region(hostOrigin, targetEnv string) (string, error) {
	var fromEnv string
	if targetEnv != "" {
		d, ok := Regions[strings.ToLower(targetEnv)]
		if !ok {
			return "", fmt.Errorf("%w: gcTargetEnv %q", ErrRegion, targetEnv)
		}
		fromEnv = d
	}
	if hostOrigin == "" {
		if fromEnv == "" {
			return "", fmt.Errorf("%w: no gcHostOrigin or gcTargetEnv", ErrRegion)
		}
		return fromEnv, nil
	}
	u, err := url.Parse(hostOrigin)
	if err != nil || u.Scheme != "https" || u.Port() != "" || (u.Path != "" && u.Path != "/") {
		return "", fmt.Errorf("%w: gcHostOrigin %q is not https://host", ErrRegion, hostOrigin)
	}
	host := strings.ToLower(u.Hostname())
	host = strings.TrimPrefix(host, "apps.")
	if !knownDomain(host) {
		return "", fmt.Errorf("%w: gcHostOrigin %q", ErrRegion, hostOrigin)
	}
	if fromEnv != "" && fromEnv != host {
		return "", fmt.Errorf("%w: gcHostOrigin %q and gcTargetEnv %q name different regions", ErrRegion, hostOrigin, targetEnv)
	}
	return host, nil
}

func knownDomain(d string) bool {
	for _, v := range Regions {
		if v == d {
			return true
		}
	}
	return false
}

// APIBaseURL returns the API base URL of a region domain
// ("https://api.mypurecloud.ie"), or an error wrapping ErrRegion for a
// domain not in Regions.
func APIBaseURL(domain string) (string, error) {
	if !knownDomain(domain) {
		return "", fmt.Errorf("%w: %q", ErrRegion, domain)
	}
	return "https://api." + domain, nil
}

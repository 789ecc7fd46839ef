// Package baseurl checks the base URL an HTTP API client is given (the Ray
// dashboard's, the TTS service's): one set of rules, and error messages that
// never repeat credentials.
package baseurl

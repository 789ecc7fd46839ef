// Package tts deploys the text-to-speech service on Ray Serve and is a Go
// client for its API.
package tts

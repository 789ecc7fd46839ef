// Package tts is to deploy the text-to-speech service (emotion control,
// streaming) on Ray Serve and to be a Go client for its API.
//
// Nothing is implemented here yet: the package holds its place in the module
// layout until the TTS work starts.
package tts

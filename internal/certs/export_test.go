package certs

// MacIterations is macIterations, for the external tests.
var MacIterations = macIterations

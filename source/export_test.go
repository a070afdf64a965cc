package source

// Unexported names the external tests use.
var ParseExpiresIn = parseExpiresIn

const MaxReplyBytes = maxReplyBytes

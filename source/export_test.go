package source

// MemoryStoreKeyOf returns the key under which m holds tok, for tests that
// act on a source's store entry.
func MemoryStoreKeyOf(m *MemoryStore, tok *Token) (string, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, t := range m.tokens {
		if sameCredential(t.Token, tok) {
			return k, true
		}
	}
	return "", false
}

-- wrk script for bench/users-page: each request searches the next of a spread of terms, so
-- the run measures searches in general, not one search repeated. Common name parts (many
-- matches near the start of name order), surnames (matches far along it), short terms (no
-- trigram: walked), IDs and email parts (few matches: looked up).
local terms = {
  "ander", "williams", "smith", "rez", "son", "mar", "jo", "s00123", "e0004", "lee",
  "nguyen", "alex", "chris", "ann", "young", "wright", "hall", "taylor", "ez", "garcia",
  "james.smith", "s0987", "kim", "white", "patel", "ro", "michael", "brown", "lopez", "zz",
}
local i = 0
request = function()
  i = i + 1
  return wrk.format(nil, "/users?q=" .. terms[(i % #terms) + 1])
end

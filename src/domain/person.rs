//! How a person is named on screen.

/// "First Last" (each trimmed), or the username when both names are empty: the one way the
/// portal names a user (lists, pages, flashes) and the signed-in person.
pub fn display_name(first: &str, last: &str, username: &str) -> String {
    let name = format!("{} {}", first.trim(), last.trim());
    if name.trim().is_empty() {
        username.to_string()
    } else {
        name.trim().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn names_or_the_username() {
        assert_eq!(display_name(" Ana ", "Ruiz", "aruiz"), "Ana Ruiz");
        assert_eq!(display_name("Ana", "", "aruiz"), "Ana");
        assert_eq!(display_name("", " Ruiz", "aruiz"), "Ruiz");
        assert_eq!(display_name(" ", "", "aruiz"), "aruiz");
    }
}

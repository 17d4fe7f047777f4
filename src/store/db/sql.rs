//! SQL text for PostgreSQL: the store writes `?N` placeholders (SQLite's), PostgreSQL wants
//! `$N`. Pure: [`to_postgres`] rewrites outside string literals, quoted names and comments.

/// `?N` becomes `$N`, and a bare `?` the next number (as SQLite counts them); text inside
/// `'...'`, `"..."`, `-- ...` and `/* ... */` is left alone.
pub fn to_postgres(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 8);
    let mut i = 0;
    let mut next = 1u32;
    let mut copy_from = 0;
    while i < b.len() {
        match b[i] {
            q @ (b'\'' | b'"') => {
                // A doubled quote inside is an escaped one; either way the literal goes on.
                i += 1;
                while i < b.len() && b[i] != q {
                    i += 1;
                }
                i += 1;
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i += 2;
            }
            b'?' => {
                out.push_str(&sql[copy_from..i]);
                let start = i + 1;
                let mut end = start;
                while end < b.len() && b[end].is_ascii_digit() {
                    end += 1;
                }
                out.push('$');
                if end > start {
                    let n = &sql[start..end];
                    out.push_str(n);
                    next = n.parse::<u32>().map_or(next, |n| n + 1);
                } else {
                    out.push_str(&next.to_string());
                    next += 1;
                }
                i = end;
                copy_from = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&sql[copy_from.min(sql.len())..]);
    out
}

#[cfg(test)]
mod tests {
    use super::to_postgres;

    #[test]
    fn placeholders_are_numbered_for_postgres() {
        assert_eq!(
            to_postgres("UPDATE runs SET state = ?2, reason = ?3 WHERE id = ?1"),
            "UPDATE runs SET state = $2, reason = $3 WHERE id = $1"
        );
        assert_eq!(
            to_postgres("VALUES (?1, ?2, ?4, 'pending', ?4)"),
            "VALUES ($1, $2, $4, 'pending', $4)"
        );
        assert_eq!(to_postgres("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(to_postgres("x IN (?10, ?11)"), "x IN ($10, $11)");
    }

    #[test]
    fn literals_names_and_comments_are_left_alone() {
        assert_eq!(
            to_postgres("SELECT 'what?1', 'it''s ?2', \"col?\" FROM t WHERE a = ?1"),
            "SELECT 'what?1', 'it''s ?2', \"col?\" FROM t WHERE a = $1"
        );
        assert_eq!(
            to_postgres("SELECT 1 -- why ?1\nWHERE a = ?1 /* or ?2 */ AND b = ?2"),
            "SELECT 1 -- why ?1\nWHERE a = $1 /* or ?2 */ AND b = $2"
        );
        assert_eq!(to_postgres("SELECT 'open ?1"), "SELECT 'open ?1");
        assert_eq!(to_postgres(""), "");
    }
}

//! Reading the files' tables: the components they declare (with `replace`), variables in
//! string values, and `--set` overrides.

use super::unknown::did_you_mean;
use super::*;

pub(super) fn interpolate_table(
    table: &mut DeTable<'_>,
    file: &SourceFile,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    for (_, value) in table.iter_mut() {
        interpolate_value(value, file, env, diags);
    }
}

pub(super) fn interpolate_value(
    value: &mut Spanned<DeValue<'_>>,
    file: &SourceFile,
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    let span = value.span();
    match value.get_mut() {
        DeValue::String(s) => match interpolate(s, env) {
            Ok(Some(new)) => *s = Cow::Owned(new),
            Ok(None) => {}
            Err(e) => diags.push(
                Diagnostic::at(file, Some(span), e.to_string())
                    .with_hint(Some("set the variable, or give a default: ${NAME:-value}")),
            ),
        },
        DeValue::Array(items) => {
            for item in items.iter_mut() {
                interpolate_value(item, file, env, diags);
            }
        }
        DeValue::Table(t) => interpolate_table(t, file, env, diags),
        _ => {}
    }
}

/// Replaces `${VAR}` in the string values of `--set` overrides, as in the files: written in
/// single quotes (`--set 'sinks.db.url=${DB_URL}'`), a value is interpolated here, and hidden
/// in diagnostics, rather than by the shell.
pub(super) fn interpolate_overrides(
    overrides: &mut [Override<'_>],
    env: &dyn Fn(&str) -> Option<String>,
    diags: &mut Vec<Diagnostic>,
) {
    fn strings<'a>(value: &mut DeValue<'a>, each: &mut dyn FnMut(&mut Cow<'a, str>)) {
        match value {
            DeValue::String(s) => each(s),
            DeValue::Array(items) => {
                for item in items.iter_mut() {
                    strings(item.get_mut(), each);
                }
            }
            DeValue::Table(t) => {
                for (_, v) in t.iter_mut() {
                    strings(v.get_mut(), each);
                }
            }
            _ => {}
        }
    }
    for o in overrides {
        let arg = o.arg;
        strings(&mut o.value, &mut |s| match interpolate(s, env) {
            Ok(Some(new)) => *s = Cow::Owned(new),
            Ok(None) => {}
            Err(e) => diags.push(
                Diagnostic::general(format!("--set {arg}"), e.to_string())
                    .with_hint(Some("set the variable, or give a default: ${NAME:-value}")),
            ),
        });
    }
}

/// Takes `replace` out of a component's (or `[dead_letter]`'s) table `t`: whether it replaces
/// an earlier file's.
fn replace_flag(
    t: &mut DeTable<'_>,
    file: &SourceFile,
    span: &Range<usize>,
    path: &str,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    match t.remove("replace").map(Spanned::into_inner) {
        Some(DeValue::Boolean(b)) => b,
        Some(other) => {
            diags.push(
                Diagnostic::at(
                    file,
                    Some(span.clone()),
                    format!(
                        "`replace` must be true or false, found {}",
                        other.type_str()
                    ),
                )
                .in_component(path),
            );
            false
        }
        None => false,
    }
}

pub(super) fn declare<'i>(
    index: usize,
    file: &SourceFile,
    root: DeTable<'i>,
    declared: &mut Vec<Declared<'i>>,
    dead_letter: &mut Option<Declared<'i>>,
    diags: &mut Vec<Diagnostic>,
) {
    for (key, value) in root {
        let key_span = key.span();
        let span = value.span();
        let kind = match key.get_ref().as_ref() {
            "sources" => Kind::Source,
            "transforms" => Kind::Transform,
            "sinks" => Kind::Sink,
            DEAD_LETTER => {
                match value.into_inner() {
                    DeValue::Table(mut t) => {
                        // As for components: a later file replaces it only saying so.
                        let replace = replace_flag(&mut t, file, &key_span, DEAD_LETTER, diags);
                        match (&*dead_letter, replace) {
                            (Some(first), false) => {
                                let hint = if first.file == index {
                                    "a file has one `[dead_letter]` table".to_string()
                                } else {
                                    "an earlier file declares `[dead_letter]`; add `replace = \
                                     true` here to replace it"
                                        .to_string()
                                };
                                diags.push(
                                    Diagnostic::at(
                                        file,
                                        Some(key_span),
                                        "duplicate `[dead_letter]` table",
                                    )
                                    .in_component(DEAD_LETTER)
                                    .with_hint(Some(hint)),
                                );
                                continue;
                            }
                            (None, true) => diags.push(
                                Diagnostic::at(
                                    file,
                                    Some(key_span.clone()),
                                    "`replace = true`, but no earlier file declares `[dead_letter]`",
                                )
                                .in_component(DEAD_LETTER)
                                .with_hint(Some(
                                    "remove `replace`, or list the file that declares it first",
                                )),
                            ),
                            _ => {}
                        }
                        *dead_letter = Some(Declared {
                            file: index,
                            id: DEAD_LETTER.into(),
                            kind: Kind::Sink,
                            key_span,
                            table: Spanned::new(span, t),
                        })
                    }
                    other => diags.push(Diagnostic::at(
                        file,
                        Some(span),
                        format!("`dead_letter` must be a table, found {}", other.type_str()),
                    )),
                }
                continue;
            }
            // The pipeline's own tests: `ecomflow test` runs them, `validate` checks them.
            TESTS => continue,
            other => {
                let known = [
                    "sources",
                    "transforms",
                    "sinks",
                    DEAD_LETTER,
                    CHECKPOINT,
                    HTTP,
                    CHANNELS,
                    STATE,
                    TESTS,
                ];
                diags.push(
                    Diagnostic::at(file, Some(key_span), format!("unknown table `{other}`"))
                        .with_hint(Some(did_you_mean(other, &known, "expected one of"))),
                );
                continue;
            }
        };
        let DeValue::Table(components) = value.into_inner() else {
            diags.push(Diagnostic::at(
                file,
                Some(key_span),
                format!("`{}` must be a table of components", kind.table()),
            ));
            continue;
        };
        for (id, value) in components {
            let path = format!("{}.{}", kind.table(), id.get_ref());
            let id_span = id.span();
            let span = value.span();
            let DeValue::Table(t) = value.into_inner() else {
                diags.push(
                    Diagnostic::at(file, Some(id_span), "a component must be a table")
                        .in_component(path)
                        .with_hint(Some(format!("write it as [{}.<id>]", kind.table()))),
                );
                continue;
            };
            let id = id.into_inner().into_owned();
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                diags.push(
                    Diagnostic::at(file, Some(id_span), format!("invalid component id `{id}`"))
                        .in_component(path)
                        .with_hint(Some(
                            "use letters, digits, `_` and `-` (a `.` selects an output port)",
                        )),
                );
                continue;
            }
            let mut t = t;
            // A later file may replace a component of an earlier one, saying so explicitly.
            let replace = replace_flag(&mut t, file, &id_span, &path, diags);
            match declared.iter().position(|d| d.id == id) {
                Some(at) if replace && declared[at].file != index => {
                    declared.remove(at);
                }
                Some(at) => {
                    let first = &declared[at];
                    let hint = if first.file == index {
                        format!(
                            "ids must be unique across sources, transforms and sinks; `{id}` is already a {}",
                            first.kind.noun()
                        )
                    } else {
                        format!(
                            "`{id}` is already a {} in an earlier file; add `replace = true` here to replace it",
                            first.kind.noun()
                        )
                    };
                    diags.push(
                        Diagnostic::at(
                            file,
                            Some(id_span),
                            format!("duplicate component id `{id}`"),
                        )
                        .in_component(path)
                        .with_hint(Some(hint)),
                    );
                    continue;
                }
                None if replace => {
                    diags.push(
                        Diagnostic::at(
                            file,
                            Some(id_span.clone()),
                            format!("`replace = true`, but no earlier file declares `{id}`"),
                        )
                        .in_component(path.clone())
                        .with_hint(Some(
                            "remove `replace`, or list the file that declares it first",
                        )),
                    );
                }
                None => {}
            }
            declared.push(Declared {
                file: index,
                id,
                kind,
                key_span: id_span,
                table: Spanned::new(span, t),
            });
        }
    }
}

pub(super) fn apply_overrides<'i>(
    overrides: &[Override<'i>],
    declared: &mut [Declared<'i>],
    dead_letter: &mut Option<Declared<'i>>,
    diags: &mut Vec<Diagnostic>,
) {
    for o in overrides
        .iter()
        .filter(|o| ![CHECKPOINT, HTTP, CHANNELS, STATE].contains(&o.table.as_str()))
    {
        let target = if o.table == DEAD_LETTER {
            dead_letter.as_mut()
        } else {
            declared
                .iter_mut()
                .find(|d| d.kind.table() == o.table && d.id == o.id)
        };
        let Some(d) = target else {
            diags.push(Diagnostic::general(
                format!("--set {}", o.arg),
                format!("no component `{}.{}` to set an option of", o.table, o.id),
            ));
            continue;
        };
        let span = d.key_span.clone();
        set_option(d.table.get_mut(), span, o, diags);
    }
}

/// Applies the `--set <name>.<option>` overrides to the top-level table `name`
/// (`checkpoint`, `http`), making one when the files have none.
pub(super) fn apply_table_overrides<'i>(
    overrides: &[Override<'i>],
    name: &str,
    table: &mut Option<Spanned<DeValue<'i>>>,
    diags: &mut Vec<Diagnostic>,
) {
    for o in overrides.iter().filter(|o| o.table == name) {
        let value = table.get_or_insert_with(|| Spanned::new(0..0, DeValue::Table(DeTable::new())));
        let span = value.span();
        match value.get_mut() {
            DeValue::Table(t) => set_option(t, span, o, diags),
            _ => diags.push(Diagnostic::general(
                format!("--set {}", o.arg),
                format!("`{name}` is not a table"),
            )),
        }
    }
}

/// Sets the option `o` names in `table`, making the tables on its path.
fn set_option<'i>(
    mut table: &mut DeTable<'i>,
    span: Range<usize>,
    o: &Override<'i>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some((last, parents)) = o.path.split_last() else {
        return;
    };
    for p in parents {
        let entry = table
            .entry(Spanned::new(span.clone(), Cow::Owned(p.clone())))
            .or_insert_with(|| Spanned::new(span.clone(), DeValue::Table(DeTable::new())));
        match entry.get_mut() {
            DeValue::Table(t) => table = t,
            _ => {
                diags.push(Diagnostic::general(
                    format!("--set {}", o.arg),
                    format!("`{p}` is not a table"),
                ));
                return;
            }
        }
    }
    table.insert(
        Spanned::new(span.clone(), Cow::Owned(last.clone())),
        Spanned::new(span, o.value.clone()),
    );
}

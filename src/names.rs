//! The names of a fieldless enum, each written once: the enum's `ALL` and
//! `NAMES`, `name()`, `FromStr` (a usage error that lists the choices),
//! and `Display`. The command line offers `NAMES` as its possible values
//! (`cli::choice`), so what `--help` lists, what parses and what prints
//! cannot drift apart.

/// `named!("what it is", Enum { Variant = "name", ... })`.
#[macro_export]
macro_rules! named {
    ($what:literal, $t:ident { $($v:ident = $s:literal),+ $(,)? }) => {
        impl $t {
            /// Every value, in the order of [`Self::NAMES`].
            pub const ALL: [$t; [$($s),+].len()] = [$($t::$v),+];
            /// Every value's name.
            pub const NAMES: [&'static str; [$($s),+].len()] = [$($s),+];

            pub fn name(self) -> &'static str {
                match self {
                    $($t::$v => $s),+
                }
            }
        }

        impl std::str::FromStr for $t {
            type Err = $crate::error::Error;
            fn from_str(s: &str) -> std::result::Result<$t, $crate::error::Error> {
                match s {
                    $($s => Ok($t::$v),)+
                    _ => Err($crate::error::Error::Usage(format!(
                        "unknown {} {s:?}; one of {}",
                        $what,
                        $t::NAMES.join(", ")
                    ))),
                }
            }
        }

        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Fruit {
        Apple,
        BloodOrange,
    }
    crate::named!("fruit", Fruit { Apple = "apple", BloodOrange = "blood-orange" });

    #[test]
    fn names_parse_print_and_list_once() {
        assert_eq!(Fruit::NAMES, ["apple", "blood-orange"]);
        assert_eq!(Fruit::ALL, [Fruit::Apple, Fruit::BloodOrange]);
        for f in Fruit::ALL {
            assert_eq!(f.name().parse::<Fruit>().unwrap(), f);
            assert_eq!(f.to_string(), f.name());
        }
        let e = "pear".parse::<Fruit>().unwrap_err().to_string();
        assert!(
            e.contains("unknown fruit \"pear\"; one of apple, blood-orange"),
            "{e}"
        );
    }

    /// serde writes these enums in run.json and the reports: its names
    /// must be the ones `named!` parses and prints.
    #[test]
    fn serde_writes_the_same_names() {
        fn same<
            T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug + Copy,
        >(
            all: &[T],
            name: fn(T) -> &'static str,
        ) {
            for &v in all {
                let json = serde_json::to_string(&v).unwrap();
                assert_eq!(json, format!("\"{}\"", name(v)));
                assert_eq!(serde_json::from_str::<T>(&json).unwrap(), v);
            }
        }
        use crate::*;
        same(&schema::Mode::ALL, schema::Mode::name);
        same(&schema::TriggerVariant::ALL, schema::TriggerVariant::name);
        same(&jobs::Job::ALL, jobs::Job::name);
        same(&alerts::Fault::ALL, alerts::Fault::name);
        same(&repo::replicas::Via::ALL, repo::replicas::Via::name);
        same(&repo::Pooling::ALL, repo::Pooling::name);
        same(&scenario::Operation::ALL, scenario::Operation::name);
        same(&cutover::Step::ALL, cutover::Step::name);
    }
}

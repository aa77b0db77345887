//! Procedural macros for zerorpc. Use them through the `zerorpc` crate:
//! `#[zerorpc::service]` and `#[zerorpc::client]`, documented there.

mod client;

use proc_macro::TokenStream;
use proc_macro2::{Ident, Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned};

use client::{ClientNames, RemoteMethod};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{
    Attribute, FnArg, GenericArgument, ImplItem, ImplItemFn, ItemImpl, ItemTrait, LitStr, Pat,
    PathArguments, ReturnType, Token, TraitItem, Type, TypeParamBound, Visibility,
    parse_macro_input,
};

/// Exposes the public (`pub` or `pub(...)`) `&self` methods of an inherent `impl` block as remote
/// methods: implements `zerorpc::Service` for the type.
///
/// * Sync methods run on the blocking thread pool, so they may block; async
///   methods run in the call's task. Mark a quick, never-blocking sync
///   method `#[zerorpc(inline)]` to have the server answer it on its
///   socket's I/O thread the moment the request arrives, saving two
///   thread hand-offs per call (see `Methods::add_inline`: while it runs,
///   no heartbeat of any call leaves, so it must never block). An async
///   method returning one value may be marked too: the server starts it
///   there and answers at once if it completes without waiting, else a
///   task takes it on (`Methods::add_inline_async`; it must not block
///   before its first wait). A method returning a stream or an iterator
///   may be marked too: the server polls it on that thread for each item
///   the client's credit allows, and no item crosses between threads
///   (`Methods::add_inline_stream`; each item must come quickly).
/// * Doc comments become the help text; parameter names and types the
///   argument list shown by introspection. Trailing `Option` parameters may
///   be left out by callers. A string argument is accepted for a number or
///   bool parameter when it spells one, since command lines send strings.
/// * Parameters are owned types (`String`, not `&str`): arguments are
///   decoded from each call's message. A borrowed one is a compile error
///   saying which owned type to take.
/// * `Result<T, E>`: `Err(e)` becomes `ERR [type name, message, causes]`.
///   `E` needs `Display`, and `std::error::Error` for its causes.
/// * A result or stream item written `Vec<u8>` is sent as msgpack bin
///   (Python `bytes`); elsewhere use `zerorpc::Bytes`.
/// * A return type `impl Iterator<Item = T>` or `impl Stream<Item = T>`
///   (possibly inside `Result`, possibly with `Item = Result<T, E>`) answers
///   with a stream. For other iterator or stream types, mark the method
///   `#[zerorpc(iter)]` or `#[zerorpc(stream)]`.
/// * `#[zerorpc(skip)]` hides a public method; `#[zerorpc(name = "x")]`
///   exposes it under another name. `#[zerorpc::service(name = "X")]` names
///   the service (default: the type's name).
///
/// # Typed clients
///
/// Next to the service, the attribute generates `ShopClient` (for `impl
/// Shop`) and `ShopBlockingClient`, with one method per remote method,
/// named as the Rust method and calling the remote name:
///
/// * `ShopClient::new(client: zerorpc::Client)`,
///   `ShopClient::connect(endpoint) -> zerorpc::Result<ShopClient>`,
///   `client()` (the untyped client behind it) and `blocking()`;
///   `ShopBlockingClient::new(zerorpc::BlockingClient)` and `connect`.
/// * Parameters have the service's types, except that `String` is taken as
///   `&str` and `Vec<T>` as `&[T]` (also inside `Option`); a `Vec<u8>` is
///   sent as msgpack bin (Python `bytes`). A trailing `None`
///   is left out of the call, so that the server applies its default (a
///   Python `b=1`, our `None`); one followed by a set argument is sent as nil.
/// * Results are `zerorpc::Result<T>` with the service's result type made
///   owned (`&str` gives `String`, `&[T]` gives `Vec<T>`; the error type of a
///   `Result` becomes the remote error of `zerorpc::Error`). Streaming methods
///   give `zerorpc::Result<zerorpc::ReplyStream<T>>` (blocking:
///   `zerorpc::BlockingStream<T>`). A type the client cannot name
///   (`impl Trait` other than a stream, a named type marked
///   `#[zerorpc(iter)]`, anything mentioning `Self`) gives `zerorpc::Value`.
/// * Options: `client = false` generates none; `client = "Till"` names it
///   (the blocking one is then `TillBlocking`; a name ending in `Client` gets
///   `BlockingClient` instead); `client_vis = "pub"` sets the clients'
///   visibility, private to the module by default since the clients name the
///   service's parameter types, which may be private. Generic `impl` blocks
///   get no client. A remote method named `new`, `connect`, `client` or
///   `blocking` clashes with the client's own: rename the Rust method and
///   keep the remote name with `#[zerorpc(name = "...")]`.
///
/// For a service implemented elsewhere, see `#[zerorpc::client]`.
#[proc_macro_attribute]
pub fn service(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr as ServiceOptions);
    let mut item = parse_macro_input!(item as ItemImpl);
    match expand(options, &mut item) {
        Ok(tokens) => tokens.into(),
        Err(e) => {
            let error = e.to_compile_error();
            quote!(#item #error).into()
        }
    }
}

/// Generates the typed clients of a service implemented elsewhere (in
/// Python, in another program...) from a trait describing its methods.
///
/// ```text
/// #[zerorpc::client]
/// pub trait Calculator {
///     /// Adds; `b` defaults to 1 on the server.
///     fn add(&self, a: i64, b: Option<i64>) -> i64;
///     #[zerorpc(name = "range")]
///     fn count(&self, n: u64) -> impl Iterator<Item = u64>;
/// }
/// ```
///
/// The trait is a description, replaced by `CalculatorClient` and
/// `CalculatorBlockingClient` with the trait's visibility; the clients are
/// those `#[zerorpc::service]` generates (see its "Typed clients"), and the
/// signatures are read the same way: `&self` then the parameters; the
/// remote result type, possibly in a `Result`; `impl Iterator<Item = T>` or
/// `impl Stream<Item = T>` for a stream. Methods may be `async` or not (the
/// clients' are async and blocking anyway), and take `#[zerorpc(name =
/// "...")]`. `#[zerorpc::client(name = "Calc")]` names the client.
#[proc_macro_attribute]
pub fn client(attr: TokenStream, item: TokenStream) -> TokenStream {
    let options = parse_macro_input!(attr as ClientOptions);
    let item = parse_macro_input!(item as ItemTrait);
    match expand_client(options, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// The trait only describes the remote service: it is replaced by its
/// clients, having no implementation to call.
fn expand_client(options: ClientOptions, mut item: ItemTrait) -> syn::Result<TokenStream2> {
    let mut methods = Vec::new();
    for trait_item in &mut item.items {
        let TraitItem::Fn(method) = trait_item else {
            return Err(syn::Error::new_spanned(
                trait_item,
                "a #[zerorpc::client] trait holds only the signatures of remote methods",
            ));
        };
        let opts = method_options(&mut method.attrs)?;
        if opts.skip || opts.inline {
            return Err(syn::Error::new_spanned(
                &method.sig.ident,
                "skip and inline are options of a service's methods, not of a client's",
            ));
        }
        if !takes_self(&method.sig) {
            return Err(syn::Error::new_spanned(
                &method.sig,
                "a remote method's signature takes `&self`",
            ));
        }
        methods.push(RemoteMethod::new(&method.sig, &method.attrs, &opts)?);
    }
    let service = item.ident.to_string();
    let name = options
        .name
        .unwrap_or_else(|| format_ident!("{}Client", item.ident, span = item.ident.span()));
    Ok(client::expand(
        &ClientNames {
            vis: item.vis.clone(),
            name,
            service,
        },
        &methods,
    ))
}

#[derive(Default)]
struct ServiceOptions {
    name: Option<LitStr>,
    client: ClientOption,
    client_vis: Option<Visibility>,
}

/// Whether, and under which name, a typed client is generated.
#[derive(Default)]
enum ClientOption {
    #[default]
    Default,
    Off,
    Named(Ident),
}

impl Parse for ServiceOptions {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = ServiceOptions::default();
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            if pair.path.is_ident("name") {
                options.name = Some(lit_str(&pair.value)?);
            } else if pair.path.is_ident("client") {
                options.client = match &pair.value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Bool(b),
                        ..
                    }) if !b.value => ClientOption::Off,
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Bool(_),
                        ..
                    }) => ClientOption::Default,
                    other => ClientOption::Named(lit_str(other)?.parse()?),
                };
            } else if pair.path.is_ident("client_vis") {
                options.client_vis = Some(lit_str(&pair.value)?.parse()?);
            } else {
                return Err(syn::Error::new_spanned(
                    pair.path,
                    "unknown option; expected `name = \"...\"`, `client = false`, `client = \"...\"` or `client_vis = \"...\"`",
                ));
            }
        }
        Ok(options)
    }
}

/// The options of `#[zerorpc::client]`.
#[derive(Default)]
struct ClientOptions {
    name: Option<Ident>,
}

impl Parse for ClientOptions {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let mut options = ClientOptions::default();
        let pairs = Punctuated::<syn::MetaNameValue, Token![,]>::parse_terminated(input)?;
        for pair in pairs {
            if pair.path.is_ident("name") {
                options.name = Some(lit_str(&pair.value)?.parse()?);
            } else {
                return Err(syn::Error::new_spanned(
                    pair.path,
                    "unknown option; expected `name = \"...\"` (the client's name)",
                ));
            }
        }
        Ok(options)
    }
}

fn lit_str(expr: &syn::Expr) -> syn::Result<LitStr> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(other, "expected a string literal")),
    }
}

#[derive(Default)]
struct MethodOptions {
    skip: bool,
    inline: bool,
    name: Option<LitStr>,
    kind: Option<StreamKind>,
}

#[derive(Clone, Copy, PartialEq)]
enum StreamKind {
    Iter,
    Stream,
}

/// Reads and removes the `#[zerorpc(...)]` attributes of a method.
fn method_options(attrs: &mut Vec<Attribute>) -> syn::Result<MethodOptions> {
    let mut options = MethodOptions::default();
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("zerorpc") {
            return true;
        }
        let result = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("skip") {
                options.skip = true;
            } else if meta.path.is_ident("inline") {
                options.inline = true;
            } else if meta.path.is_ident("iter") {
                options.kind = Some(StreamKind::Iter);
            } else if meta.path.is_ident("stream") {
                options.kind = Some(StreamKind::Stream);
            } else if meta.path.is_ident("name") {
                options.name = Some(meta.value()?.parse()?);
            } else {
                return Err(meta.error(
                    "unknown option; expected skip, inline, iter, stream or name = \"...\"",
                ));
            }
            Ok(())
        });
        if let Err(e) = result {
            error.get_or_insert(e);
        }
        false
    });
    match error {
        Some(e) => Err(e),
        None => Ok(options),
    }
}

fn doc_text(attrs: &[Attribute]) -> String {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => lit_str(&nv.value).ok().map(|s| s.value()),
            _ => None,
        })
        .collect();
    let indent = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let text: Vec<&str> = lines
        .iter()
        .map(|l| {
            if l.len() >= indent {
                &l[indent..]
            } else {
                l.trim_start()
            }
        })
        .collect();
    text.join("\n").trim().to_owned()
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn first_generic(segment: &syn::PathSegment) -> Option<&Type> {
    nth_generic(segment, 0)
}

/// The `n`th type argument of `segment` (`Result<T, E>`, 1: `E`).
fn nth_generic(segment: &syn::PathSegment, n: usize) -> Option<&Type> {
    match &segment.arguments {
        PathArguments::AngleBracketed(args) => args
            .args
            .iter()
            .filter_map(|a| match a {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .nth(n),
        _ => None,
    }
}

/// `Result<T, E>` gives `T`.
fn result_ok_type(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident == "Result" {
        first_generic(segment)
    } else {
        None
    }
}

/// For `impl Iterator<Item = X>` / `impl Stream<Item = X>`: the kind and X.
fn stream_shape(ty: &Type) -> Option<(StreamKind, Option<&Type>)> {
    let Type::ImplTrait(imp) = ty else {
        return None;
    };
    imp.bounds.iter().find_map(|bound| {
        let TypeParamBound::Trait(t) = bound else {
            return None;
        };
        let segment = t.path.segments.last()?;
        let kind = match segment.ident.to_string().as_str() {
            "Iterator" | "IntoIterator" | "ExactSizeIterator" | "DoubleEndedIterator" => {
                StreamKind::Iter
            }
            "Stream" => StreamKind::Stream,
            _ => return None,
        };
        let item = match &segment.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::AssocType(assoc) if assoc.ident == "Item" => Some(&assoc.ty),
                _ => None,
            }),
            _ => None,
        };
        Some((kind, item))
    })
}

fn type_text(ty: &Type) -> String {
    let raw = quote!(#ty).to_string();
    let mut out = String::with_capacity(raw.len());
    let chars: Vec<char> = raw.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if c == ' ' {
            let prev = if i > 0 { chars[i - 1] } else { ' ' };
            let next = chars.get(i + 1).copied().unwrap_or(' ');
            let tight = "<>:&()[];".contains(prev) || "<>:&,()[];".contains(next);
            if tight && prev != ',' {
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn is_option(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Option")
}

/// Converts the error `error` of a method into a remote error. The call is
/// spanned on the error type (`span`), so that a type that cannot be sent
/// gets one error there, saying what to implement.
fn to_remote(error: TokenStream2, span: Span) -> TokenStream2 {
    let call = quote_spanned!(span=> (&&&&::zerorpc::__private::Wrap(&#error)).to_remote());
    quote! {{
        #[allow(unused_imports)]
        use ::zerorpc::__private::{ToRemote as _, ToRemoteFromError as _, ToRemoteFromDynError as _, ToRemoteFromDisplay as _};
        #call
    }}
}

/// `Result<T, E>` gives `E`.
fn result_err_type(ty: &Type) -> Option<&Type> {
    let segment = last_segment(ty)?;
    if segment.ident == "Result" {
        nth_generic(segment, 1)
    } else {
        None
    }
}

/// Whether `ty` is written `Vec<u8>`: such results and stream items go as
/// msgpack bin (Python `bytes`), and typed clients send such parameters
/// so.
pub(crate) fn is_byte_vec(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| {
        s.ident == "Vec"
            && first_generic(s)
                .is_some_and(|item| last_segment(item).is_some_and(|i| i.ident == "u8"))
    })
}

/// The `Result<Value, RemoteError>` to send for a result or an item
/// `value` declared as `ty`: a `Value` as it is, bytes as bin without a
/// copy, anything else serialized (see `zerorpc::__private::Answer`).
fn as_sent(value: TokenStream2, ty: Option<&Type>) -> TokenStream2 {
    let owned = match ty {
        Some(ty) if is_byte_vec(ty) => quote!(::zerorpc::Value::Binary(#value)),
        _ => value,
    };
    quote! {{
        #[allow(unused_imports)]
        use ::zerorpc::__private::{AnswerValue as _, AnswerSerialized as _};
        (&&::zerorpc::__private::Answer::new(#owned)).value()
    }}
}

/// Rejects a parameter that borrows: arguments are decoded from each
/// call's message, which is gone once the call is dispatched, so serde
/// would only say that the impl is "not general enough".
fn check_owned(ty: &Type) -> syn::Result<()> {
    let Some(reference) = find_reference(ty) else {
        return Ok(());
    };
    let owned = match &*reference.elem {
        Type::Path(p) if p.path.is_ident("str") => "`String`".to_owned(),
        Type::Slice(s) if last_segment(&s.elem).is_some_and(|i| i.ident == "u8") => {
            "`Vec<u8>` (or `zerorpc::Bytes`)".to_owned()
        }
        Type::Slice(s) => {
            let item = &s.elem;
            format!("`Vec<{}>`", type_text(item))
        }
        other => format!("`{}`", type_text(other)),
    };
    Err(syn::Error::new_spanned(
        ty,
        format!(
            "remote method parameters cannot borrow: arguments are decoded from each call's message; take an owned type: {owned} instead of `{}`",
            type_text(&Type::Reference(reference.clone()))
        ),
    ))
}

/// The first reference in `ty`, however deep (`Option<&str>`).
fn find_reference(ty: &Type) -> Option<&syn::TypeReference> {
    match ty {
        Type::Reference(r) => Some(r),
        Type::Path(p) => p.path.segments.iter().find_map(|s| match &s.arguments {
            PathArguments::AngleBracketed(args) => args.args.iter().find_map(|a| match a {
                GenericArgument::Type(t) => find_reference(t),
                _ => None,
            }),
            _ => None,
        }),
        Type::Tuple(t) => t.elems.iter().find_map(find_reference),
        Type::Array(a) => find_reference(&a.elem),
        Type::Slice(s) => find_reference(&s.elem),
        Type::Group(g) => find_reference(&g.elem),
        Type::Paren(p) => find_reference(&p.elem),
        _ => None,
    }
}

fn expand(options: ServiceOptions, item: &mut ItemImpl) -> syn::Result<TokenStream2> {
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "#[zerorpc::service] goes on an inherent impl block, not a trait impl",
        ));
    }
    let self_ty = item.self_ty.clone();
    let service_name = match options.name {
        Some(name) => name,
        None => {
            let ident = last_segment(&self_ty)
                .map(|s| s.ident.to_string())
                .unwrap_or_else(|| "Service".to_owned());
            LitStr::new(&ident, Span::call_site())
        }
    };
    let mut registrations = Vec::new();
    let mut remote_methods = Vec::new();
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let opts = method_options(&mut method.attrs)?;
        if opts.skip || matches!(method.vis, Visibility::Inherited) {
            continue;
        }
        registrations.push(register(method, &opts)?);
        if takes_self(&method.sig) && !matches!(options.client, ClientOption::Off) {
            remote_methods.push(RemoteMethod::new(&method.sig, &method.attrs, &opts)?);
        }
    }
    // The client of a generic service would need its parameters, which
    // its methods' types may name: such services get none.
    let client_name = match options.client {
        ClientOption::Off => None,
        ClientOption::Named(name) => Some(name),
        ClientOption::Default if item.generics.params.is_empty() => last_segment(&self_ty)
            .map(|s| format_ident!("{}Client", s.ident, span = s.ident.span())),
        ClientOption::Default => None,
    };
    let client = client_name.map(|name| {
        client::expand(
            &ClientNames {
                vis: options.client_vis.unwrap_or(Visibility::Inherited),
                name,
                service: service_name.value(),
            },
            &remote_methods,
        )
    });
    let (impl_generics, _, where_clause) = item.generics.split_for_impl();
    Ok(quote! {
        #item

        #client

        impl #impl_generics ::zerorpc::Service for #self_ty #where_clause {
            fn methods(self: ::std::sync::Arc<Self>) -> ::zerorpc::Methods {
                let mut methods = ::zerorpc::Methods::new(#service_name);
                #(#registrations)*
                methods
            }
        }
    })
}

/// Whether a method takes `&self`: associated functions (constructors...)
/// are not remote methods; `&mut self` is rejected by [`register`].
fn takes_self(sig: &syn::Signature) -> bool {
    matches!(sig.inputs.first(), Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none())
}

fn register(method: &ImplItemFn, opts: &MethodOptions) -> syn::Result<TokenStream2> {
    let sig = &method.sig;
    let ident = &sig.ident;
    match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() && r.mutability.is_none() => {}
        Some(FnArg::Receiver(r)) => {
            return Err(syn::Error::new_spanned(
                r,
                "remote methods take `&self`: calls run concurrently, so keep mutable state behind a Mutex, or mark the method #[zerorpc(skip)]",
            ));
        }
        // Associated functions (constructors...) are not remote methods.
        _ => return Ok(TokenStream2::new()),
    }
    let name = opts
        .name
        .clone()
        .unwrap_or_else(|| LitStr::new(&ident.to_string(), ident.span()));
    let doc = doc_text(&method.attrs);

    let mut params = Vec::new();
    for (i, input) in sig.inputs.iter().skip(1).enumerate() {
        let FnArg::Typed(pt) = input else { continue };
        check_owned(&pt.ty)?;
        let param_name = match &*pt.pat {
            Pat::Ident(p) => p.ident.to_string().trim_start_matches('_').to_owned(),
            _ => format!("arg{i}"),
        };
        params.push((format_ident!("__p{}", i), param_name, (*pt.ty).clone()));
    }
    let arg_names: Vec<&str> = params.iter().map(|(_, n, _)| n.as_str()).collect();
    let arg_optional: Vec<bool> = params.iter().map(|(_, _, ty)| is_option(ty)).collect();
    let arg_infos = params.iter().map(|(_, n, ty)| {
        let text = type_text(ty);
        let default = is_option(ty).then(|| quote!(.with_default(::zerorpc::Value::Nil)));
        quote!(::zerorpc::Arg::new(#n).with_type(#text) #default)
    });
    let decode = params.iter().map(|(var, n, ty)| {
        quote! {
            let #var: #ty = match (&&::zerorpc::__private::ArgOf::<#ty>::new()).take(&mut __args, #n) {
                ::std::result::Result::Ok(v) => v,
                ::std::result::Result::Err(e) => return ::zerorpc::__private::err(e),
            };
        }
    });
    let vars: Vec<_> = params.iter().map(|(v, _, _)| v.clone()).collect();

    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) => Some((**ty).clone()),
    };
    let (fallible, ok_ty) = match &output {
        Some(ty) => match result_ok_type(ty) {
            Some(ok) => (true, Some(ok.clone())),
            None => (false, Some(ty.clone())),
        },
        None => (false, None),
    };
    let shape = ok_ty.as_ref().and_then(stream_shape);
    let stream_kind = opts.kind.or(shape.map(|(k, _)| k));
    let item_ty = shape.and_then(|(_, item)| item);
    let item_fallible = item_ty.is_some_and(|t| result_ok_type(t).is_some());
    let item_ok_ty = item_ty.map(|t| result_ok_type(t).unwrap_or(t));
    // The error types, to span a conversion that cannot compile on them.
    let error_span = |ty: Option<&Type>| {
        ty.and_then(result_err_type)
            .map_or_else(Span::call_site, syn::spanned::Spanned::span)
    };
    let result_error_span = error_span(output.as_ref());
    let item_error_span = error_span(item_ty);
    let is_async = sig.asyncness.is_some();
    let await_ = is_async.then(|| quote!(.await));
    let call = quote!(this.#ident(#(#vars),*) #await_);
    let convert_error = to_remote(quote!(e), result_error_span);
    let convert_item_error = to_remote(quote!(e), item_error_span);

    let body = match stream_kind {
        None => {
            let sent = as_sent(quote!(v), ok_ty.as_ref());
            let convert = if fallible {
                quote! {
                    match __r {
                        ::std::result::Result::Ok(v) => ::zerorpc::__private::answer(#sent),
                        ::std::result::Result::Err(e) => ::zerorpc::__private::err(#convert_error),
                    }
                }
            } else {
                let sent = as_sent(quote!(__r), ok_ty.as_ref());
                quote!(::zerorpc::__private::answer(#sent))
            };
            // Sync methods are called directly: they are registered with
            // `add_inline` or `add_blocking` (below), and the server runs
            // them on its I/O thread or on the blocking pool.
            quote! { let __r = #call; #convert }
        }
        Some(kind) if kind == StreamKind::Iter && !is_async && !opts.inline => {
            // A sync method's iterator may block: it runs on the blocking
            // pool and hands its items over through a sink.
            let sent = as_sent(quote!(v), item_ok_ty);
            let item = if item_fallible {
                quote! {
                    match __item {
                        ::std::result::Result::Ok(v) => { if !__sink.item_blocking(#sent) { break; } }
                        ::std::result::Result::Err(e) => { __sink.error_blocking(#convert_item_error); break; }
                    }
                }
            } else {
                quote! { let v = __item; if !__sink.item_blocking(#sent) { break; } }
            };
            let unwrap = if fallible {
                quote! {
                    let __r = match __r {
                        ::std::result::Result::Ok(v) => v,
                        ::std::result::Result::Err(e) => { __sink.error_blocking(#convert_error); return; }
                    };
                }
            } else {
                TokenStream2::new()
            };
            quote! { ::zerorpc::__private::iter_stream(#name, move |__sink| { let __r = #call; #unwrap for __item in __r { #item } }) }
        }
        Some(kind) => {
            // A stream, an async method's iterator, or an inline method's
            // iterator: the reply loop, or the I/O thread for an inline
            // method (`Methods::add_inline_stream`), polls it for each
            // item it sends.
            let sent = as_sent(quote!(v), item_ok_ty);
            let each = if item_fallible {
                quote! {
                    |__item| match __item {
                        ::std::result::Result::Ok(v) => #sent,
                        ::std::result::Result::Err(e) => ::std::result::Result::Err(#convert_item_error),
                    }
                }
            } else {
                quote! { |v| #sent }
            };
            let unwrap = if fallible {
                quote! {
                    let __r = match __r {
                        ::std::result::Result::Ok(v) => v,
                        ::std::result::Result::Err(e) => return ::std::result::Result::Err(#convert_error),
                    };
                }
            } else {
                TokenStream2::new()
            };
            let items = match kind {
                StreamKind::Iter => quote!(::zerorpc::__private::futures::stream::iter(__r)),
                StreamKind::Stream => quote!(__r),
            };
            quote! {
                ::zerorpc::__private::async_stream(async move {
                    let __r = #call;
                    #unwrap
                    ::std::result::Result::Ok(::zerorpc::__private::futures::StreamExt::map(#items, #each))
                })
            }
        }
    };
    let streaming = stream_kind.is_some();
    let info = quote! {
        ::zerorpc::MethodInfo::new().doc(#doc).args(::std::vec![#(#arg_infos),*]).streaming(#streaming)
    };
    let unpack = quote! {
        #[allow(unused_mut)]
        let mut __args = match ::zerorpc::__private::args(#name, __values, &[#(#arg_names),*], &[#(#arg_optional),*]) {
            ::std::result::Result::Ok(a) => a,
            ::std::result::Result::Err(e) => return ::zerorpc::__private::err(e),
        };
        #[allow(unused_imports)]
        use ::zerorpc::__private::{TakeValue as _, TakeDecoded as _};
        #(#decode)*
    };
    if !is_async && stream_kind.is_none() {
        // Answered on the server's I/O thread (`Methods::add_inline`) or
        // on the blocking pool (`Methods::add_blocking`).
        let add = if opts.inline {
            quote!(add_inline)
        } else {
            quote!(add_blocking)
        };
        return Ok(quote! {
            {
                let this = ::std::sync::Arc::clone(&self);
                methods.#add(
                    #name,
                    #info,
                    move |__values: ::std::vec::Vec<::zerorpc::Value>| {
                        let this = &this;
                        ::zerorpc::__private::single((move || -> ::zerorpc::Reply {
                            #unpack
                            #body
                        })())
                    },
                );
            }
        });
    }
    if opts.inline && !streaming {
        // Started on the server's I/O thread: see `Methods::add_inline_async`.
        return Ok(quote! {
            {
                let this = ::std::sync::Arc::clone(&self);
                methods.add_inline_async(
                    #name,
                    #info,
                    move |__values: ::std::vec::Vec<::zerorpc::Value>| {
                        let this = ::std::sync::Arc::clone(&this);
                        async move {
                            ::zerorpc::__private::single(async move {
                                #unpack
                                #body
                            }.await)
                        }
                    },
                );
            }
        });
    }
    // An inline stream is polled on the server's I/O thread: see
    // `Methods::add_inline_stream`.
    let add = if opts.inline {
        quote!(add_inline_stream)
    } else {
        quote!(add)
    };
    Ok(quote! {
        {
            let this = ::std::sync::Arc::clone(&self);
            methods.#add(
                #name,
                #info,
                move |__values: ::std::vec::Vec<::zerorpc::Value>| {
                    let this = ::std::sync::Arc::clone(&this);
                    async move {
                        #unpack
                        #body
                    }
                },
            );
        }
    })
}

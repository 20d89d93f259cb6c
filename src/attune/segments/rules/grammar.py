"""The rule grammar (lark, LALR(1)): kept beside the parser as a constant so it ships with the code.

Keywords are lower case. Every terminal is named so parse errors can say in words what was
expected. ``DURATION`` is deliberately loose (any digits followed by letters) so that a bad
window such as ``7x`` or ``-3h`` becomes one token the parser can point at and explain,
rather than a confusing split into a number and a name.
"""

GRAMMAR = r"""
start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr          -> negation
         | atom
?atom: _LPAR or_expr _RPAR
     | operand OP literal                                  -> compare
     | operand _BETWEEN NUMBER _AND NUMBER                 -> between
     | operand _IN _LPAR literals _RPAR                    -> isin
     | operand _NOT _IN _LPAR literals _RPAR               -> notin
     | call                                                -> predicate
     | TRUE                                                -> const
     | FALSE                                               -> const

operand: call | path
call: NAME _LPAR [arg (_COMMA arg)*] _RPAR
?arg: path | STRING | kwarg
kwarg: NAME _EQ (DURATION | STRING)
path: NAME (_DOT NAME)*
literals: literal (_COMMA literal)* _COMMA?
?literal: NUMBER | STRING | TRUE | FALSE

_OR: "or"
_AND: "and"
_NOT: "not"
_IN: "in"
_BETWEEN: "between"
TRUE: "true"
FALSE: "false"
OP: "==" | "!=" | ">=" | "<=" | ">" | "<"
_LPAR: "("
_RPAR: ")"
_COMMA: ","
_DOT: "."
_EQ: "="
NAME: /[A-Za-z_][A-Za-z0-9_]*/
NUMBER: /[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/
DURATION: /[+-]?[0-9][A-Za-z0-9_.]*/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/

%ignore /\s+/
"""
